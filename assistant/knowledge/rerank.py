"""Rerankers: reorder the best retrieval candidates by a second, slower relevance model.

The ``reranker_model`` setting names one (``reranker_for``):

- a sentence-transformers **CrossEncoder** folder (``CrossEncoderReranker``). Its score
  replaces ``Hit.score``, as it always has; a cross-encoder's scale is its own (often logits),
  so a ``min_score`` threshold must be set for that model.
- ``llm`` (the configured chat model) or ``llm:<model reference>`` (any reference
  ``assistant.backends.load`` accepts: a pack, a folder, ``openai:<m>@<url>``, ``fake``):
  an **LLM relevance judge** (``LLMReranker``). For each candidate the model is asked whether
  the passage answers the question; the score is P(yes) normalized over yes/no, from one
  batched ``score_choices`` call over the candidates (the HF backend runs the shared prompt
  head once, then only each passage, and reads one position's logits: see
  ``assistant.backends.hf.scoring``). P(yes) goes into ``Hit.rerank_score`` only;
  ``Hit.score`` stays the retrieval relevance that ``min_score`` is calibrated on, because a
  small model's P(yes) is no calibrated probability (``benchmarks/rerank.py``).

Every reranker sorts by its score, highest first; ties keep the retrieval order (a stable
sort). It reads at most ``depth`` candidates; the rest follow in retrieval order. Rerankers
are registered by kind in ``RERANKERS``; their heavy imports (torch, sentence-transformers)
happen when a model is first used, and each model is loaded once per process.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from assistant.errors import ConfigError
from assistant.registry import Registry

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.settings import Settings

LLM_PREFIX = "llm"


class Rerankable(Protocol):
    """What a reranker reads and writes of a ``retrieve.Hit`` (which imports this module, so
    this one names only the fields: no import circle)."""

    text: str
    score: float
    rerank_score: float | None


Hit = TypeVar("Hit", bound=Rerankable)


class ChoiceScorer(Protocol):
    """The one thing the LLM reranker asks of a backend (``LLMBackend.score_choices``)."""

    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]: ...


class Reranker(Protocol):
    name: ClassVar[str]
    # How many retrieval candidates it reads (the caller fetches at least this many).
    depth: int

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """The ``k`` best of ``hits`` by this reranker, best first (``rerank_score`` set)."""
        ...


# Reranker classes by kind; each has ``from_setting(argument, settings)``.
RERANKERS: Registry[type[Any]] = Registry("reranker")


def register_reranker(name: str, target: str | type[Any]) -> None:
    """Register ``"module:Class"`` (or a class) under ``name``; a second registration is a bug."""
    RERANKERS.register(name, target)


def parse_reranker_setting(value: str) -> tuple[str, str]:
    """``(kind, argument)`` for a ``reranker_model`` value, without loading anything.

    ``llm`` -> ``("llm", "")`` (the configured chat model); ``llm:<ref>`` -> ``("llm", ref)``;
    anything else is a CrossEncoder folder -> ``("cross_encoder", path)``.
    """
    text = value.strip()
    if not text:
        raise ConfigError(
            "reranker_model is empty",
            hint="unset it for no reranking, or give 'llm', 'llm:<model>' or a CrossEncoder folder",
        )
    head, colon, ref = text.partition(":")
    if head == LLM_PREFIX:
        if colon and not ref.strip():
            raise ConfigError(
                f"reranker_model {value!r} names no model",
                hint="use 'llm' for the configured model or 'llm:<model reference>'",
            )
        return "llm", ref.strip()
    return "cross_encoder", text


def reranker_for(settings: Settings) -> Reranker | None:
    """The reranker ``settings.reranker_model`` names, or None when it is unset."""
    if settings.reranker_model is None:
        return None
    kind, argument = parse_reranker_setting(settings.reranker_model)
    reranker: Reranker = RERANKERS.get(kind).from_setting(argument, settings)
    return reranker


def _stable_sort(hits: list[Hit], depth: int, k: int) -> list[Hit]:
    """``k`` hits: the first ``depth`` by ``rerank_score`` (ties in retrieval order), then the rest."""
    head = sorted(hits[:depth], key=lambda h: -(h.rerank_score or 0.0))
    return (head + hits[depth:])[:k]


def _check_k(k: int) -> None:
    if k <= 0:
        raise ConfigError(f"k must be > 0, got {k}")


# ---- sentence-transformers CrossEncoder ------------------------------------------------------


def rerank_hits(model: Any, query: str, hits: list[Hit], k: int) -> list[Hit]:
    """The ``k`` best hits by a sentence-transformers CrossEncoder; ``score`` becomes its score."""
    if not hits:
        return []
    import numpy as np

    raw = np.asarray(model.predict([(query, hit.text) for hit in hits], show_progress_bar=False))
    # One output per pair is a relevance score; with several (a classifier), the last is "relevant".
    scores = raw.reshape(len(hits), -1)[:, -1]
    for hit, value in zip(hits, scores, strict=True):
        hit.rerank_score = hit.score = float(value)
    return sorted(hits, key=lambda h: h.score, reverse=True)[:k]


@dataclass
class CrossEncoderReranker:
    path: Path
    device: str | None = None
    depth: int = 20
    name: ClassVar[str] = "cross_encoder"

    @classmethod
    def from_setting(cls, argument: str, settings: Settings) -> CrossEncoderReranker:
        path = Path(argument).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"reranker_model {argument!r} is not a CrossEncoder folder (no config.json there)",
                hint="give a sentence-transformers CrossEncoder folder, 'llm' (the configured model) "
                "or 'llm:<model reference>'",
            )
        return cls(path, settings.device)

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        _check_k(k)
        from assistant.knowledge.embeddings import load_sentence_model

        model = load_sentence_model(self.path, self.device, cross_encoder=True)
        return rerank_hits(model, query, hits[: self.depth], k) + hits[self.depth :][: max(0, k - self.depth)]


# ---- an LLM asked "does this passage answer the question?" -----------------------------------

# The question comes before the passage, so the k prompts of one query share their head (chat
# template, instruction, question): the HF backend runs it once and then only each passage.
PROMPT = (
    "Question: {question}\n\nPassage: {passage}\n\n"
    "Does the passage contain the answer to the question? Answer Yes or No."
)
CHOICES = ("Yes", "No")  # one token each in the packs' tokenizers: one position read per passage
# A chunk is ~500 characters; a longer record is cut, so one passage cannot dominate the cost.
MAX_PASSAGE_CHARS = 1200


def p_yes(log_yes: float, log_no: float) -> float:
    """P(yes) normalized over yes/no: a logistic of the log-probability gap, overflow-safe."""
    gap = log_yes - log_no
    if gap >= 0:
        return 1.0 / (1.0 + math.exp(-gap))
    odds = math.exp(gap)
    return odds / (1.0 + odds)


@dataclass
class LLMReranker:
    backend: ChoiceScorer
    depth: int = 10
    max_passage_chars: int = MAX_PASSAGE_CHARS
    name: ClassVar[str] = "llm"

    @classmethod
    def from_setting(cls, argument: str, settings: Settings) -> LLMReranker:
        return cls(judge_backend(argument or None, settings))

    def prompts(self, query: str, hits: list[Hit]) -> list[str]:
        return [PROMPT.format(question=query.strip(), passage=h.text[: self.max_passage_chars]) for h in hits]

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        _check_k(k)
        head = hits[: self.depth]
        if not head:
            return []
        rows = self.backend.score_choices(self.prompts(query, head), list(CHOICES))
        for hit, (log_yes, log_no) in zip(head, rows, strict=True):
            hit.rerank_score = p_yes(log_yes, log_no)
        return _stable_sort(hits, self.depth, k)


# Judge backends by (model reference, settings), loaded once per process. Not shared with
# ``assistant.service``'s cache (the knowledge floor may not import the service above it), so
# ``llm`` next to a RAG answer holds a second copy of the chat model.
_judges: dict[tuple[str, str], LLMBackend] = {}
_judges_lock = threading.Lock()


def judge_backend(ref_text: str | None, settings: Settings) -> LLMBackend:
    """The backend for the LLM reranker (``None``: the ``model`` setting), loaded once.

    Built with ``score_recheck_margin = 0``: a close yes/no call only moves a passage among
    its neighbours, which is not worth a float32 copy of the model.
    """
    from assistant.backends.load import build_backend
    from assistant.models.refs import parse_model_ref

    ref = parse_model_ref(ref_text, settings)
    judge_settings = dataclasses.replace(settings, score_recheck_margin=0.0)
    if ref.kind == "fake":  # a fake holds a script; each reranker gets its own
        return build_backend(ref, judge_settings)
    key = (ref.text, judge_settings.fingerprint())
    with _judges_lock:
        if key not in _judges:
            _judges[key] = build_backend(ref, judge_settings)
        return _judges[key]


register_reranker("cross_encoder", CrossEncoderReranker)
register_reranker("llm", LLMReranker)

__all__ = [
    "CHOICES",
    "PROMPT",
    "RERANKERS",
    "CrossEncoderReranker",
    "LLMReranker",
    "Reranker",
    "judge_backend",
    "p_yes",
    "parse_reranker_setting",
    "register_reranker",
    "rerank_hits",
    "reranker_for",
]
