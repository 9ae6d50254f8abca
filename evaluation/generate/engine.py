"""Write a QA test suite from a knowledge base: questions, reference answers, source chunks.

    report = generate_items(kb, backend, GenerateConfig(n=50), progress)
    paths = write_suite(report, Path("suites"), "handbook_generated", kb.name)   # output.py

Why our own generator and not ``ragas.testset``. ragas 0.4.3's ``TestsetGenerator`` was
read (``ragas/testset/transforms/default.py``, ``synthesizers/``) and rejected for offline
use with small models:
- ``default_transforms`` counts tokens with ``num_tokens_from_string``, which calls
  ``tiktoken.get_encoding("cl100k_base")``: a download. Offline it raises
  ``ConnectionError`` (checked), and with a flaky network it can hang with no timeout.
  Custom transforms could avoid it, but not the next point.
- Every step before the first question is an LLM call whose output must parse into a
  pydantic model (headlines, summaries, themes, named entities, personas, then the
  query/answer pair). qwen2.5-coder-0.5b fails even our single, much simpler JSON request
  in about half its replies (copies the passage, the example, or prose); a chain of five
  such steps, where a failed extractor drops the node, leaves a small knowledge base with
  no usable graph. A larger endpoint model could run ragas; a 0.5B local one cannot.
- Its prompts are English, so Chinese chunks get English questions, and its multi-hop
  synthesizers need the theme/entity overlap those extractors produce.
Our generator asks for one JSON object per item, in the passage's own language (``prompts``),
and checks every reply (``checks``): JSON, question form, language, grounding in the passage,
a number that contradicts the question, near-duplicates, copies of the prompt's example. With
``GenerateConfig.answer_check`` set, an item that passed is then answered again from its
passages only, and dropped when its reference does not follow from them (``consistency``). It
needs only ``LLMBackend.generate``, so any backend works: a pack, a folder, an endpoint,
or the scripted fake in tests.

Items (``planner``). A single-hop item comes from one chunk. A multi-hop item comes from a chunk and a
neighbour: another chunk in the same language, ranked by stored-embedding cosine plus
BM25-token overlap, with a bonus for the same document; near-copies (token overlap above
``NEAR_COPY``) are not neighbours. Chunks are drawn in a shuffled order fixed by ``seed``;
each prompt names one sentence of each chunk to ask about (also in a seeded order), so a
chunk reused because the knowledge base has fewer chunks than items asked for is asked
about another sentence, and the prompt lists the questions already kept about it. A
rejected reply is retried once on the same passage with sampling; after that a new passage
is drawn; an item the second pass drops counts as a rejected reply. ``max_attempts`` bounds the
generation calls at ``n * max_attempts``, so a model that
never produces a valid item stops. A multi-hop task falls back to single-hop when no chunk
has a neighbour (a knowledge base of one chunk per language).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.errors import LadderError
from assistant.knowledge.embeddings import covers_cjk
from assistant.progress import NullProgress, Progress
from assistant.types import GenParams
from evaluation.generate.checks import Dedup, Thresholds, check, content_units
from evaluation.generate.consistency import AnswerCheck, Candidate, second_answers, verdict
from evaluation.generate.planner import MULTI, SINGLE, KbChunk, Planner, Task, avoid, kinds, load_chunks
from evaluation.generate.prompts import example_texts

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.knowledge import KnowledgeBase


class EmptyKnowledgeBase(LadderError):
    """The knowledge base has no chunk long enough to ask about."""

    exit_code = 1


class NothingGenerated(LadderError):
    """Every reply of the generator model was rejected."""

    exit_code = 1


@dataclass(frozen=True)
class GenerateConfig:
    n: int
    seed: int = 0
    multi_hop_share: float = 0.25
    max_attempts: int = 4  # model calls per requested item, on average, before giving up
    retries_per_passage: int = 1  # sampled retries on the same passage after a rejected reply
    batch_size: int = 8  # replies generated per model call
    min_chunk_chars: int = 40  # shorter chunks (headings, fragments) are not asked about
    max_new_tokens: int = 128  # a question and a short answer in JSON fit in well under 100
    retry_temperature: float = 0.8
    thresholds: Thresholds = field(default_factory=Thresholds)
    # The second pass (evaluation.generate.consistency): None skips it (one model call less per item).
    answer_check: AnswerCheck | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n <= 0:
            raise ValueError(f"n must be a positive integer, got {self.n!r}")
        if not 0 <= self.multi_hop_share <= 1:
            raise ValueError(f"multi_hop_share must be in 0..1, got {self.multi_hop_share}")
        for name in ("max_attempts", "batch_size", "max_new_tokens"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.retries_per_passage < 0 or self.min_chunk_chars < 0:
            raise ValueError("retries_per_passage and min_chunk_chars must be >= 0")


@dataclass
class GeneratedItem:
    id: str
    kind: str  # SINGLE or MULTI
    lang: str
    question: str
    answer: str
    chunks: tuple[KbChunk, ...]

    def row(self) -> dict[str, Any]:
        """One suite JSONL line, with ragas' field names."""
        return {
            "id": self.id,
            "user_input": self.question,
            "reference": self.answer,
            "reference_contexts": [c.text for c in self.chunks],
            # evaluation.suites.readers.load_qa reads these for hit@k / MRR by chunk id.
            "reference_context_ids": [c.chunk_id for c in self.chunks],
            # file#chunk, the file relative to the knowledge base's source root (never an
            # absolute path); a list for a multi-hop item.
            "source": self.chunks[0].where if len(self.chunks) == 1 else [c.where for c in self.chunks],
            "tags": ["generated", self.kind, f"lang:{self.lang}"],
        }


@dataclass
class GenerationReport:
    requested: int
    model_id: str
    items: list[GeneratedItem] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> the first reply rejected for it
    calls: int = 0  # generation calls; the second pass's are answer_calls
    answer_calls: int = 0
    # Every item the second pass saw: (candidate, its second answer, why it was dropped or None).
    second_pass: list[tuple[Candidate, str, str | None]] = field(default_factory=list)
    chunks_available: int = 0
    seconds: float = 0.0

    @property
    def short(self) -> bool:
        return len(self.items) < self.requested

    def count(self, kind: str) -> int:
        return sum(item.kind == kind for item in self.items)


# ---- the run --------------------------------------------------------------------------------
def ensure_chunks(kb: KnowledgeBase) -> None:
    """Refuse an empty knowledge base before a model is loaded for it."""
    if not kb.bm25.ids:
        raise EmptyKnowledgeBase(
            f"knowledge base {kb.name!r} has no chunk to ask about",
            hint=f"add documents with `ladder kb add {kb.name} PATH`",
        )


def generate_items(
    kb: KnowledgeBase,
    backend: LLMBackend,
    config: GenerateConfig,
    progress: Progress | None = None,
    id_prefix: str = "gen",
) -> GenerationReport:
    """Up to ``config.n`` checked items; ``report.rejected`` counts why the others failed."""
    progress = progress or NullProgress()
    started = time.perf_counter()
    progress.start("reading chunks", total=None, unit="chunks")
    chunks, vectors = load_chunks(kb)
    keep = [i for i, c in enumerate(chunks) if len(c.text.strip()) >= config.min_chunk_chars]
    if not keep:
        raise EmptyKnowledgeBase(
            f"knowledge base {kb.name!r} has no chunk of {config.min_chunk_chars} characters or more",
            hint=f"add documents with `ladder kb add {kb.name} PATH`",
        )
    chunks = [chunks[i] for i in keep]
    vectors = vectors[keep] if vectors is not None else None
    bm25 = kb.bm25.tokens()
    tokens = {c.chunk_id: set(bm25.get(c.chunk_id) or content_units(c.text)) for c in chunks}
    dense_for_zh = covers_cjk(kb.meta.get("embedding_languages"))
    planner = Planner(chunks, vectors, tokens, config.seed, dense_for_zh)
    multi = round(config.n * config.multi_hop_share) if planner.has_pairs() else 0
    queue = deque(planner.next(kind) for kind in kinds(config.n, multi))
    report = GenerationReport(config.n, backend.model_id, chunks_available=len(chunks))
    dedup = Dedup(config.thresholds.duplicate_jaccard)
    asked: dict[str, list[str]] = {}  # chunk id -> questions kept about it
    budget = config.n * config.max_attempts

    def reject(task: Task, reason: str, example: str) -> None:
        report.rejected[reason] += 1
        report.examples.setdefault(reason, example)
        retry = task.attempt < config.retries_per_passage
        queue.append(
            Task(task.kind, task.chunks, task.focus, task.attempt + 1) if retry else planner.next(task.kind)
        )

    # No total: the bar would show n of n at the end even when fewer items passed.
    progress.start(f"generating {config.n} questions", total=None, unit="items")
    while queue and len(report.items) < config.n and report.calls < budget:
        attempt = queue[0].attempt
        size = min(config.batch_size, config.n - len(report.items), budget - report.calls)
        batch = [queue.popleft() for _ in range(size) if queue and queue[0].attempt == attempt]
        params = GenParams(max_new_tokens=config.max_new_tokens)
        if attempt:
            params = GenParams(
                max_new_tokens=config.max_new_tokens,
                temperature=config.retry_temperature,
                seed=config.seed * 100_003 + report.calls,
            )
        prompts = [t.messages(avoid(t, asked)) for t in batch]
        completions = backend.generate(prompts, params)
        report.calls += len(batch)
        passed: list[tuple[Task, Candidate]] = []
        for task, completion in zip(batch, completions, strict=True):
            lang = task.chunks[0].lang
            examples = example_texts(lang, task.kind == MULTI)
            passages = [c.text for c in task.chunks]
            result = check(completion.text, passages, lang, dedup, config.thresholds, examples, task.focus)
            if isinstance(result, str):
                reject(task, result, completion.text)
                continue
            dedup.add(result[0])  # before the next reply of the batch is checked against it
            passed.append((task, Candidate(result[0], result[1], tuple(passages), lang)))
        for task, candidate, why in _second_pass(backend, passed, config.answer_check, report):
            if why is not None:
                dedup.forget(candidate.question)
                reject(task, why, why_example(candidate, report))
                continue
            for chunk in task.chunks:
                asked.setdefault(chunk.chunk_id, []).append(candidate.question)
            item_id = f"{id_prefix}-{len(report.items) + 1:03d}"
            report.items.append(
                GeneratedItem(
                    item_id, task.kind, candidate.lang, candidate.question, candidate.answer, task.chunks
                )
            )
            progress.advance()
        # Retries (sampled) wait behind first attempts, so batches share their params.
        queue = deque(sorted(queue, key=lambda t: t.attempt))
    report.seconds = time.perf_counter() - started
    return report


def _second_pass(
    backend: LLMBackend,
    passed: list[tuple[Task, Candidate]],
    limits: AnswerCheck | None,
    report: GenerationReport,
) -> list[tuple[Task, Candidate, str | None]]:
    """Each item that passed the checks, with why the second pass drops it (None: kept)."""
    if limits is None or not passed:
        return [(task, candidate, None) for task, candidate in passed]
    seconds = second_answers(backend, [c for _, c in passed], limits)
    report.answer_calls += len(passed)
    out = []
    for (task, candidate), second in zip(passed, seconds, strict=True):
        why = verdict(candidate, second, limits)
        report.second_pass.append((candidate, second, why))
        out.append((task, candidate, why))
    return out


def why_example(candidate: Candidate, report: GenerationReport) -> str:
    """What the rejection table shows for a second-pass drop: the item and the second answer."""
    second = next((s for c, s, _ in reversed(report.second_pass) if c is candidate), "")
    return f"{candidate.question} → {candidate.answer} | answered from the passages: {second or '—'}"


__all__ = [
    "MULTI",
    "SINGLE",
    "AnswerCheck",
    "EmptyKnowledgeBase",
    "GenerateConfig",
    "GeneratedItem",
    "GenerationReport",
    "KbChunk",
    "NothingGenerated",
    "ensure_chunks",
    "generate_items",
    "load_chunks",
]
