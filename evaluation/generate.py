"""Write a QA test suite from a knowledge base: questions, reference answers, source chunks.

    report = generate_items(kb, backend, GenerateConfig(n=50), progress)
    paths = write_suite(report, Path("suites"), "handbook_generated", kb.name)   # generate_output.py

Why our own generator and not ``ragas.testset``. ragas 0.4.3's ``TestsetGenerator`` was
read and rejected for offline use with small models:
- ``default_transforms`` counts tokens with ``num_tokens_from_string``, which calls
  ``tiktoken.get_encoding("cl100k_base")``: a download, with no timeout, that hangs or
  fails offline (a pitfall this project already paid for).
- Every step before the first question is an LLM call whose output must parse into a
  pydantic model (headlines, summaries, themes, named entities, personas, then the
  query/answer pair), with a retry-on-parse-failure loop. A 0.5B model fails those
  parsers most of the time, and a failed extractor drops the node, so a small knowledge
  base often ends with no usable graph and no questions, or an exception.
- Its multi-hop synthesizers need the themes/entities overlap the same extractors make,
  and its prompts are English, so Chinese chunks get English questions.
Our generator asks for one JSON object per passage, in the passage's own language, and
checks every reply (``generate_checks``): JSON, question form, language, grounding in
the passage, near-duplicates. It needs only ``LLMBackend.generate``, so any backend works:
a pack, a folder, an endpoint, or the scripted fake in tests.

Items. A single-hop item comes from one chunk. A multi-hop item comes from a chunk and a
neighbour: another chunk in the same language, ranked by stored-embedding cosine plus
BM25-token overlap, with a bonus for the same document; near-copies (token overlap above
``NEAR_COPY``) are not neighbours. Chunks are drawn in a shuffled order fixed by ``seed``;
when the knowledge base has fewer chunks than items asked for, chunks are reused and the
prompt lists the questions already kept about them. A rejected reply is retried once on
the same passage with sampling; after that a new passage is drawn. ``max_attempts`` bounds
the model calls at ``n * max_attempts``, so a model that never produces a valid item stops.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.errors import LadderError
from assistant.models.progress import NullProgress, Progress
from assistant.types import GenParams, Message
from evaluation.generate_checks import ZH, Dedup, Thresholds, check, content_units, language

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
    max_new_tokens: int = 200
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
            # evaluation.loaders.load_qa reads these for hit@k / MRR by chunk id.
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
    attempt: int = 0


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
        self, chunks: list[KbChunk], vectors: np.ndarray | None, tokens: dict[str, set[str]], seed: int
    ) -> None:
        self.chunks, self.vectors, self.tokens = chunks, vectors, tokens
        rng = random.Random(seed)
        self.single_order = list(range(len(chunks)))
        rng.shuffle(self.single_order)
        self.multi_order = list(range(len(chunks)))
        rng.shuffle(self.multi_order)
        self._neighbours: dict[int, list[int]] = {}
        self._uses: Counter[int] = Counter()
        self._next_single = self._next_multi = 0

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
                if self.vectors is not None:
                    score += float(self.vectors[index] @ self.vectors[other])
                scored.append((-score, chunk.chunk_id, other))
            self._neighbours[index] = [other for _, _, other in sorted(scored)]
        return self._neighbours[index]

    def has_pairs(self) -> bool:
        return any(self.neighbours(i) for i in range(len(self.chunks)))

    def next(self, kind: str) -> _Task:
        if kind == SINGLE:
            index = self.single_order[self._next_single % len(self.single_order)]
            self._next_single += 1
            return _Task(SINGLE, (self.chunks[index],))
        while True:  # has_pairs() was checked: some anchor has a neighbour
            anchor = self.multi_order[self._next_multi % len(self.multi_order)]
            self._next_multi += 1
            partners = self.neighbours(anchor)
            if partners:
                # The anchor's k-th use pairs it with its k-th neighbour.
                partner = partners[self._uses[anchor] % len(partners)]
                self._uses[anchor] += 1
                return _Task(MULTI, (self.chunks[anchor], self.chunks[partner]))


def _kinds(n: int, multi: int) -> list[str]:
    """``n`` kinds with ``multi`` multi-hop ones spread evenly among them."""
    return [MULTI if (i + 1) * multi // n > i * multi // n else SINGLE for i in range(n)]


# ---- prompts --------------------------------------------------------------------------------
# Per language: system, the passage labels (one passage; two), the request (single; multi),
# rules, the avoid-list line, a worked example (single; multi) and the reply form. A small
# model follows a prompt in the passage's language better, and answers in it; the example
# shows the JSON form and a short answer better than a description does. Its topic (a
# canteen, shipping) is far from business documents, so a copied example fails the checks.
_PROMPTS: dict[str, dict[str, Any]] = {
    "en": {
        "system": "You write exam questions about a company's documents. "
        "Reply with one JSON object and nothing else.",
        "labels": (["Passage"], ["Passage 1", "Passage 2"]),
        "ask": (
            "Write one question that this passage answers, and its answer.\nRules:\n"
            "- Ask about one specific fact in the passage (a number, a name, a rule, a date).\n",
            "Write one question that needs facts from BOTH passages to answer (for example, comparing "
            "or combining them), and its answer.\nRules:\n",
        ),
        "rules": "- The answer is short and uses the passages' own words.\n"
        "- Write the question and the answer in English.\n",
        "avoid": "- Do not repeat these questions:\n",
        "example": (
            'Example passage: "The staff canteen serves lunch from 11:30 to 13:30 every day."\n'
            'Example reply: {"question": "When does the staff canteen serve lunch?", '
            '"answer": "From 11:30 to 13:30 every day."}\n',
            'Example passage 1: "Orders over 200 yuan ship for free."\n'
            'Example passage 2: "Standard shipping costs 15 yuan."\n'
            'Example reply: {"question": "How much is shipping for an order of 150 yuan?", '
            '"answer": "15 yuan: only orders over 200 yuan ship for free."}\n',
        ),
        "form": "Reply with one JSON object in the same form, about the passage above, and nothing else.",
    },
    ZH: {
        "system": "你为公司文档出考题。只回复一个 JSON 对象，不要写别的。",
        "labels": (["资料"], ["资料一", "资料二"]),
        "ask": (
            "根据这段资料，写一个问题和它的答案。\n要求：\n"
            "- 问题针对资料中的一个具体事实（数字、名称、规定、日期）。\n",
            "写一个需要同时用到资料一和资料二才能回答的问题（例如比较或合并两处的事实），以及它的答案。\n要求：\n",
        ),
        "rules": "- 答案简短，使用资料中的原话。\n- 问题和答案都用中文。\n",
        "avoid": "- 不要重复这些问题：\n",
        "example": (
            "示例资料：“员工食堂每天 11:30 至 13:30 供应午餐。”\n"
            '示例回复：{"question": "员工食堂每天什么时候供应午餐？", "answer": "每天 11:30 至 13:30"}\n',
            "示例资料一：“订单满 200 元包邮。”\n示例资料二：“普通快递运费为 15 元。”\n"
            '示例回复：{"question": "一笔 150 元的订单运费是多少？", '
            '"answer": "15 元，因为满 200 元才包邮。"}\n',
        ),
        "form": "按同样的格式，针对上面的资料，只回复一个 JSON 对象，不要写别的。",
    },
}


def build_messages(task: _Task, avoid: Sequence[str] = ()) -> list[Message]:
    """The prompt for one item, in the passages' language."""
    prompt = _PROMPTS[ZH if task.chunks[0].lang == ZH else "en"]
    multi = len(task.chunks) > 1
    labels = prompt["labels"][multi]
    sep = "：" if task.chunks[0].lang == ZH else ":"
    text = "".join(
        f"{label}{sep}\n<<<\n{c.text}\n>>>\n\n" for label, c in zip(labels, task.chunks, strict=True)
    )
    text += prompt["ask"][multi] + prompt["rules"]
    if avoid:
        text += prompt["avoid"] + "".join(f"  - {q}\n" for q in avoid)
    text += "\n" + prompt["example"][multi] + "\n" + prompt["form"]
    return [Message("system", prompt["system"]), Message("user", text)]


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
    planner = _Planner(chunks, vectors, tokens, config.seed)
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
        prompts = [build_messages(t, _avoid(t, asked)) for t in batch]
        completions = backend.generate(prompts, params)
        report.calls += len(batch)
        for task, completion in zip(batch, completions, strict=True):
            result = check(
                completion.text, [c.text for c in task.chunks], task.chunks[0].lang, dedup, config.thresholds
            )
            if isinstance(result, str):
                report.rejected[result] += 1
                report.examples.setdefault(result, completion.text)
                retry = task.attempt < config.retries_per_passage
                queue.append(
                    _Task(task.kind, task.chunks, task.attempt + 1) if retry else planner.next(task.kind)
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
    "build_messages",
    "ensure_chunks",
    "generate_items",
    "load_chunks",
]
