"""Write a QA test suite from a knowledge base: questions, reference answers, source chunks.

    report = generate_items(kb, backend, GenerateConfig(n=50), progress)
    paths = write_suite(report, Path("suites"), "handbook_generated", kb.name)   # generate_output.py

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
Our generator asks for one JSON object per item, in the passage's own language (prompts:
``generate_prompts``), and checks every reply (``generate_checks``): JSON, question form,
language, grounding in the passage, near-duplicates, copies of the prompt's example. It
needs only ``LLMBackend.generate``, so any backend works: a pack, a folder, an endpoint,
or the scripted fake in tests.

Items. A single-hop item comes from one chunk. A multi-hop item comes from a chunk and a
neighbour: another chunk in the same language, ranked by stored-embedding cosine plus
BM25-token overlap, with a bonus for the same document; near-copies (token overlap above
``NEAR_COPY``) are not neighbours. Chunks are drawn in a shuffled order fixed by ``seed``;
each prompt names one sentence of each chunk to ask about (also in a seeded order), so a
chunk reused because the knowledge base has fewer chunks than items asked for is asked
about another sentence, and the prompt lists the questions already kept about it. A
rejected reply is retried once on the same passage with sampling; after that a new passage
is drawn. ``max_attempts`` bounds the model calls at ``n * max_attempts``, so a model that
never produces a valid item stops. A multi-hop task falls back to single-hop when no chunk
has a neighbour (a knowledge base of one chunk per language).
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.errors import LadderError
from assistant.knowledge.embeddings import covers_cjk
from assistant.progress import NullProgress, Progress
from assistant.types import GenParams, Message
from evaluation.generate.checks import Dedup, Thresholds, check, content_units, language
from evaluation.generate.prompts import build_messages, example_texts, sentences

if TYPE_CHECKING:
    import numpy as np

    from assistant.backends.base import LLMBackend
    from assistant.knowledge import KnowledgeBase

SINGLE, MULTI = "single_hop", "multi_hop"
NEAR_COPY = 0.7  # token-set Jaccard above which two chunks are copies, not neighbours
SAME_DOCUMENT_BONUS = 0.2


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


@dataclass(frozen=True)
class KbChunk:
    chunk_id: str
    text: str
    source: str  # the file, as the knowledge base lists it
    number: int  # the chunk's number within its file
    lang: str

    @property
    def where(self) -> str:
        return f"{self.source}#{self.number}"


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
            "source": [c.where for c in self.chunks],
            "tags": ["generated", self.kind, f"lang:{self.lang}"],
        }


@dataclass
class GenerationReport:
    requested: int
    model_id: str
    items: list[GeneratedItem] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> the first reply rejected for it
    calls: int = 0
    chunks_available: int = 0
    seconds: float = 0.0

    @property
    def short(self) -> bool:
        return len(self.items) < self.requested

    def count(self, kind: str) -> int:
        return sum(item.kind == kind for item in self.items)


@dataclass
class _Task:
    kind: str
    chunks: tuple[KbChunk, ...]
    focus: tuple[str, ...] = ()  # the sentence of each chunk to ask about (none: the whole chunk)
    attempt: int = 0

    def messages(self, avoid: Sequence[str]) -> list[Message]:
        return build_messages([c.text for c in self.chunks], self.focus, self.chunks[0].lang, avoid)


# ---- chunks and neighbours ------------------------------------------------------------------
def load_chunks(kb: KnowledgeBase) -> tuple[list[KbChunk], np.ndarray | None]:
    """Every chunk of the knowledge base, ordered by source and number, and its stored vector."""
    import numpy as np

    stored = kb.collection.get(include=["documents", "metadatas", "embeddings"])
    rows = sorted(
        range(len(stored["ids"])),
        key=lambda r: (str(stored["metadatas"][r]["source"]), int(stored["metadatas"][r]["chunk"])),
    )
    chunks = [
        KbChunk(
            stored["ids"][r],
            stored["documents"][r],
            str(stored["metadatas"][r]["source"]),
            int(stored["metadatas"][r]["chunk"]),
            language(stored["documents"][r]),
        )
        for r in rows
    ]
    embeddings = stored.get("embeddings")
    if embeddings is None or len(embeddings) != len(rows) or not len(rows):
        return chunks, None
    vectors = np.asarray([embeddings[r] for r in rows], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return chunks, vectors / np.where(norms == 0, 1, norms)


class _Planner:
    """Which passages to ask about next: a seeded order, cycled when the chunks run out."""

    def __init__(
        self,
        chunks: list[KbChunk],
        vectors: np.ndarray | None,
        tokens: dict[str, set[str]],
        seed: int,
        dense_for_zh: bool = True,
    ) -> None:
        self.chunks, self.vectors, self.tokens = chunks, vectors, tokens
        # An English-only embedding model puts any two Chinese texts close together (0.7
        # between the demo's leave and expenses chapters): its cosine is noise there.
        self.dense_langs = {"en", "zh"} if dense_for_zh else {"en"}
        rng = random.Random(seed)
        self.single_order = list(range(len(chunks)))
        rng.shuffle(self.single_order)
        self.multi_order = list(range(len(chunks)))
        rng.shuffle(self.multi_order)
        self._neighbours: dict[int, list[int]] = {}
        self._uses: Counter[int] = Counter()
        self._next_single = self._next_multi = 0
        self._sentences: dict[int, list[str]] = {}
        self._asked: Counter[int] = Counter()
        self.seed = seed

    def focus(self, index: int) -> str | None:
        """The chunk's next sentence to ask about, in a seeded order; None if it has none."""
        if index not in self._sentences:
            found = sentences(self.chunks[index].text)
            random.Random(f"{self.seed}:{self.chunks[index].chunk_id}").shuffle(found)
            self._sentences[index] = found
        found = self._sentences[index]
        if not found:
            return None
        self._asked[index] += 1
        return found[(self._asked[index] - 1) % len(found)]

    def _task(self, kind: str, indexes: Sequence[int]) -> _Task:
        focus = [self.focus(i) for i in indexes]
        chunks = tuple(self.chunks[i] for i in indexes)
        return _Task(kind, chunks, tuple(f for f in focus if f) if all(focus) else ())

    def neighbours(self, index: int) -> list[int]:
        """Other chunks in the same language, most related first."""
        if index not in self._neighbours:
            anchor = self.chunks[index]
            mine = self.tokens[anchor.chunk_id]
            scored = []
            for other, chunk in enumerate(self.chunks):
                if other == index or chunk.lang != anchor.lang:
                    continue
                theirs = self.tokens[chunk.chunk_id]
                overlap = len(mine & theirs) / len(mine | theirs) if mine | theirs else 0.0
                if overlap > NEAR_COPY:
                    continue
                score = overlap + (SAME_DOCUMENT_BONUS if chunk.source == anchor.source else 0.0)
                if self.vectors is not None and anchor.lang in self.dense_langs:
                    score += float(self.vectors[index] @ self.vectors[other])
                scored.append((-score, chunk.chunk_id, other))
            self._neighbours[index] = [other for _, _, other in sorted(scored)]
        return self._neighbours[index]

    def has_pairs(self) -> bool:
        """Whether two chunks share a language (cheap: neighbours are ranked only when used)."""
        return max(Counter(c.lang for c in self.chunks).values(), default=0) >= 2

    def next(self, kind: str) -> _Task:
        """The next task of ``kind``; a single-hop one when no chunk has a neighbour after all."""
        if kind == MULTI:
            for _ in range(len(self.multi_order)):
                anchor = self.multi_order[self._next_multi % len(self.multi_order)]
                self._next_multi += 1
                partners = self.neighbours(anchor)
                if partners:
                    # The anchor's k-th use pairs it with its k-th neighbour.
                    partner = partners[self._uses[anchor] % len(partners)]
                    self._uses[anchor] += 1
                    return self._task(MULTI, [anchor, partner])
        index = self.single_order[self._next_single % len(self.single_order)]
        self._next_single += 1
        return self._task(SINGLE, [index])


def _kinds(n: int, multi: int) -> list[str]:
    """``n`` kinds with ``multi`` multi-hop ones spread evenly among them."""
    return [MULTI if (i + 1) * multi // n > i * multi // n else SINGLE for i in range(n)]


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
    planner = _Planner(chunks, vectors, tokens, config.seed, dense_for_zh)
    multi = round(config.n * config.multi_hop_share) if planner.has_pairs() else 0
    queue = deque(planner.next(kind) for kind in _kinds(config.n, multi))
    report = GenerationReport(config.n, backend.model_id, chunks_available=len(chunks))
    dedup = Dedup(config.thresholds.duplicate_jaccard)
    asked: dict[str, list[str]] = {}  # chunk id -> questions kept about it
    budget = config.n * config.max_attempts
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
        prompts = [t.messages(_avoid(t, asked)) for t in batch]
        completions = backend.generate(prompts, params)
        report.calls += len(batch)
        for task, completion in zip(batch, completions, strict=True):
            lang = task.chunks[0].lang
            examples = example_texts(lang, task.kind == MULTI)
            passages = [c.text for c in task.chunks]
            result = check(completion.text, passages, lang, dedup, config.thresholds, examples, task.focus)
            if isinstance(result, str):
                report.rejected[result] += 1
                report.examples.setdefault(result, completion.text)
                retry = task.attempt < config.retries_per_passage
                queue.append(
                    _Task(task.kind, task.chunks, task.focus, task.attempt + 1)
                    if retry
                    else planner.next(task.kind)
                )
                continue
            question, answer = result
            dedup.add(question)
            for chunk in task.chunks:
                asked.setdefault(chunk.chunk_id, []).append(question)
            item_id = f"{id_prefix}-{len(report.items) + 1:03d}"
            report.items.append(
                GeneratedItem(item_id, task.kind, task.chunks[0].lang, question, answer, task.chunks)
            )
            progress.advance()
        # Retries (sampled) wait behind first attempts, so batches share their params.
        queue = deque(sorted(queue, key=lambda t: t.attempt))
    report.seconds = time.perf_counter() - started
    return report


def _avoid(task: _Task, asked: dict[str, list[str]], most: int = 5) -> list[str]:
    seen = [q for chunk in task.chunks for q in asked.get(chunk.chunk_id, [])]
    return list(dict.fromkeys(seen))[-most:]


__all__ = [
    "MULTI",
    "SINGLE",
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
