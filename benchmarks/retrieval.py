"""Retrieval quality and speed of the knowledge base: dense, BM25 and hybrid, per embedder, in one run.

    .venv/bin/python benchmarks/retrieval.py --data ../shared/data/cmrc2018/cmrc2018_dev.json \\
        --embedder all-MiniLM-L6-v2 --embedder multilingual-e5-small

Data sets, side by side:

- ``--data``: SQuAD-format JSON (CMRC 2018). Every distinct context becomes one document (a
  .txt file in a temporary folder, ingested through ``KnowledgeBase.add`` like a user's files;
  with ``--as jsonl`` one record of a single JSONL file instead), every question a query whose
  gold document is its context. A hit on any chunk of the gold context counts, so hits are
  deduplicated by source before ranking (the unit ranked is the document).
- the project's retrieval sets (``--sets``, default both): ``datasets/retrieval/paraphrase_zh``
  (Chinese questions in other words than the passage) and ``en_to_zh`` (English questions),
  over ``datasets/demo/kb`` ingested into a temporary knowledge base at the default chunking.
  A hit is a top-k chunk that contains the item's evidence (the unit ranked is the chunk).
  ``--split tune|check|all`` picks the half (``datasets/retrieval/README.md``). That knowledge
  base has nine chunks, so recall@5 is easy there; ``--distractors N`` also searches the sets
  (named ``paraphrase_zh+N``...) in a second one that holds the first N contexts of ``--data``
  too. The targets are taken on the demo files alone.

``--embedder`` (repeatable) is passed as the knowledge base's ``embedding_model`` setting (a
pack name, ``all-MiniLM-L6-v2``, or a sentence-transformers folder); without it the setting's
default is used. Each embedder gets its own knowledge bases; the query and passage prefixes a
model needs are the knowledge base's business, not the benchmark's.

Printed: per data set and embedder, recall@1, recall@5 and MRR@10 per mode, and for a SQuAD set
hit@4 and hit@5 as a decision's RAG rung scores them (the top k *chunks*, a chunk matching the
gold passage by the text rule of ``evaluation.metrics.retrieval.contexts_match``); query latency
p50/p95 at k=5 (no reranker); ingest throughput (documents/s, chunks/s); memory (the process's
peak RSS, and the RSS that loading each embedder added). Then the same numbers side by side and
the targets of issue 17 with pass/fail per embedder (``TARGETS``). ``--passages N`` keeps the
first N contexts and their questions, for a run of minutes. The rankings are taken with the
questions embedded in batches, once for all modes; the timed searches embed one by one.

``--tune`` also prints, per data set and embedder, a grid of fusion settings (convex, and rank
fusion at several k; dense weights) scored from the same dense and BM25 rankings (no new
searches), so fusion defaults can be picked on one set (``--split tune``, CMRC trial) and
checked on another (``--split check``, CMRC dev). ``--relevance`` prints the ``Hit.score`` of
the best hit for the SQuAD set's questions and for questions whose answer is not in it, to help
pick a "not in the knowledge base" threshold.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import math
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import assistant  # noqa: F401  (offline env first)
from assistant.knowledge import Fusion, Hit, KnowledgeBase
from assistant.knowledge.embeddings import QUERY
from assistant.settings import load_settings
from evaluation.metrics.retrieval import contexts_match

ROOT = Path(__file__).resolve().parent.parent
DEMO_KB = ROOT / "datasets" / "demo" / "kb"
SETS_DIR = ROOT / "datasets" / "retrieval"
PROJECT_SETS = ("paraphrase_zh", "en_to_zh")
MODES = ("dense", "bm25", "hybrid")
# Chunks fetched per query and mode: the knowledge base's own candidate depth
# (retrieve.CANDIDATES), so the lowest cosine of the dense list is the floor convex fusion uses
# and --tune replays the fusion exactly; enough for 10 distinct documents.
DEPTH = 50
EMBED_BATCH = 64  # questions embedded at once before the rankings are taken
TUNE_WEIGHTS = (0.0, 0.05, 0.1, 0.3, 0.5, 1.0, 2.0)
TUNE_RRF_K = (1, 5, 10, 20, 60)

# Questions no Chinese Wikipedia paragraph set answers (for --relevance).
OUT_OF_KB = [
    "如何在Python中反转一个链表？",
    "公司的年假政策是怎样规定的？",
    "What is the capital of Australia?",
    "请解释TCP三次握手的过程。",
    "光合作用的化学方程式是什么？",
    "How do I reset my router password?",
    "明天上海的天气怎么样？",
    "莎士比亚写了哪些悲剧？",
    "报销差旅费需要哪些材料？",
    "什么是梯度下降？",
    "Who won the 2018 FIFA World Cup?",
    "如何配置Nginx反向代理？",
    "人民币兑美元的汇率是多少？",
    "二次方程的求根公式是什么？",
    "Explain the difference between TCP and UDP.",
    "血压正常范围是多少？",
]


@dataclass
class Query:
    text: str
    gold: str  # the gold document's file name
    evidence: str | None = None  # set: a hit is a chunk of ``gold`` containing it, ranked per chunk

    def unit(self, hit: Hit) -> str:
        """What is ranked: the document (SQuAD sets) or the chunk (the project's sets)."""
        return hit.chunk_id if self.evidence is not None else Path(hit.source).name

    def is_gold(self, hit: Hit) -> bool:
        if Path(hit.source).name != self.gold:
            return False
        return self.evidence is None or self.evidence in hit.text


@dataclass
class Corpus:
    """The documents one knowledge base is built from."""

    key: str
    folder: Path
    documents: dict[str, str]  # file name -> text (for hit@k's text rule)
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    form: str = "txt"


@dataclass
class DataSet:
    name: str
    corpus: Corpus
    queries: list[Query]
    squad: bool = False  # per-document targets, hit@k and --relevance apply


@dataclass(frozen=True, slots=True)
class Candidate:
    """One chunk of a ranking, kept small: what scoring and --tune need, not the text."""

    chunk_id: str
    unit: str
    gold: bool
    cosine: float | None
    bm25: float | None
    coverage: float | None = None  # IDF-weighted share of the question's terms in the chunk


@dataclass
class Measure:
    recall1: float
    recall5: float
    mrr10: float
    p50_ms: float
    p95_ms: float
    hit4: float = math.nan
    hit5: float = math.nan


@dataclass
class Ingest:
    documents: int
    chunks: int
    seconds: float


@dataclass
class SetRun:
    """One data set searched with one embedder."""

    measures: dict[str, Measure] = field(default_factory=dict)
    rankings: dict[str, list[list[Candidate]]] = field(default_factory=dict)
    dense_weights: list[float] = field(default_factory=list)  # the weight search used, per query


@dataclass
class EmbedderRun:
    label: str  # as asked for (--embedder), or "default"
    model: str = ""  # as the knowledge base records it
    load_rss_mb: float = math.nan
    fusion: Fusion | None = None
    ingests: dict[str, Ingest] = field(default_factory=dict)
    sets: dict[str, SetRun] = field(default_factory=dict)


# ---- data ---------------------------------------------------------------------------------
def load_squad(path: Path) -> tuple[dict[str, str], list[Query]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents: dict[str, str] = {}
    by_text: dict[str, str] = {}
    queries: list[Query] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"].strip()
            if context not in by_text:
                by_text[context] = f"doc-{len(by_text):05d}.txt"
                documents[by_text[context]] = context
            queries.extend(
                Query(qa["question"].strip(), by_text[context])
                for qa in paragraph["qas"]
                if qa["question"].strip()
            )
    return documents, queries


def load_project_set(name: str, split: str) -> list[Query]:
    """``datasets/retrieval/<name>.jsonl``, the items of one split (or all)."""
    queries = []
    for line in (SETS_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if split == "all" or item["split"] == split:
            queries.append(Query(item["question"], item["gold"]["source"], item["gold"]["evidence"]))
    return queries


def squad_corpus(args: argparse.Namespace, folder: Path) -> DataSet:
    documents, queries = load_squad(args.data)
    if args.passages:
        documents = dict(list(documents.items())[: args.passages])
        queries = [q for q in queries if q.gold in documents]
    if args.limit:
        queries = queries[: args.limit]
    folder.mkdir(parents=True)
    if args.form == "jsonl":
        records = (json.dumps({"id": n, "text": t}, ensure_ascii=False) for n, t in documents.items())
        (folder / "passages.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")
    else:
        for name, text in documents.items():
            (folder / name).write_text(text, encoding="utf-8")
    corpus = Corpus(args.data.stem, folder, documents, args.chunk_size, args.chunk_overlap, args.form)
    return DataSet(args.data.stem, corpus, queries, squad=True)


def demo_corpus(folder: Path, distractors: dict[str, str]) -> Corpus:
    """The demo knowledge base's files, copied so the benchmark's KB may read them, and any
    distractor documents (``--distractors``) beside them."""
    folder.mkdir(parents=True)
    documents = {}
    for path in sorted(DEMO_KB.glob("*.md")):
        shutil.copy(path, folder / path.name)
        documents[path.name] = path.read_text(encoding="utf-8")
    for name, text in distractors.items():
        (folder / name).write_text(text, encoding="utf-8")
        documents[name] = text
    key = f"demo-kb+{len(distractors)}" if distractors else "demo-kb"
    return Corpus(key, folder, documents)  # default chunking: the sets' evidence fits its chunks


# ---- scoring --------------------------------------------------------------------------------
def gold_rank(ranking: Sequence[Candidate]) -> int | None:
    """1-based place of the first gold unit (documents or chunks, each counted once)."""
    units: dict[str, bool] = {}
    for cand in ranking:
        units[cand.unit] = units.get(cand.unit, False) or cand.gold
    for place, gold in enumerate(units.values(), start=1):
        if gold:
            return place
    return None


def score(rankings: Sequence[Sequence[Candidate]]) -> tuple[float, float, float]:
    """recall@1, recall@5 and MRR@10 over the queries' rankings."""
    if not rankings:
        return math.nan, math.nan, math.nan
    r1 = r5 = mrr = 0.0
    for ranking in rankings:
        place = gold_rank(ranking)
        if place is None:
            continue
        r1 += place == 1
        r5 += place <= 5
        mrr += 1 / place if place <= 10 else 0.0
    n = len(rankings)
    return r1 / n, r5 / n, mrr / n


def candidates(hits: Sequence[Hit], query: Query) -> list[Candidate]:
    return [
        Candidate(
            sys.intern(h.chunk_id),
            sys.intern(query.unit(h)),
            query.is_gold(h),
            h.dense_score,
            h.bm25_score,
            h.term_coverage,
        )
        for h in hits
    ]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_libraries() -> float:
    """Import what every embedder needs (torch, sentence-transformers); the RSS that added, in MB."""
    before = rss_mb()
    import sentence_transformers  # noqa: F401

    return rss_mb() - before


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---- running ----------------------------------------------------------------------------------
def open_kb(
    corpus: Corpus, run: EmbedderRun, home: Path, args: argparse.Namespace
) -> tuple[KnowledgeBase, Ingest]:
    flags = {
        "home": str(home),
        "allowed_roots": str(corpus.folder),
        "chunk_size": corpus.chunk_size,
        "chunk_overlap": corpus.chunk_overlap,
        "embedding_model": None if run.label == "default" else run.label,
    }
    settings = load_settings(flags)
    slug = re.sub(r"[^a-z0-9]+", "-", Path(run.label).name.lower()).strip("-")[:40] or "model"
    name = f"bench-{corpus.key}-{corpus.form}-{settings.chunk_size}-{settings.chunk_overlap}-{slug}"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", name)
    if args.reuse and args.home and name in KnowledgeBase.list_all(settings):
        kb = KnowledgeBase.open(name, settings)
        warm_up(kb, run)
        return kb, Ingest(len(corpus.documents), kb.info()["chunks"], math.nan)
    if name in KnowledgeBase.list_all(settings):
        KnowledgeBase.delete(name, settings)
    kb = KnowledgeBase.create(name, settings)
    warm_up(kb, run)
    started = time.perf_counter()
    report = kb.add([corpus.folder])
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"ingest failed: {report.failed[:3]}")
    return kb, Ingest(len(corpus.documents), report.chunks_added, seconds)


def warm_up(kb: KnowledgeBase, run: EmbedderRun) -> None:
    """Load the embedder before anything is timed; the first time, measure what it adds to RSS."""
    before = rss_mb()
    kb.embed(["warm up"])
    if math.isnan(run.load_rss_mb):
        run.load_rss_mb = rss_mb() - before
    run.model = str(kb.info()["embedding_model"])
    run.fusion = kb.fusion


@contextlib.contextmanager
def embeddings_reused(kb: KnowledgeBase, questions: Sequence[str] = ()) -> Iterator[None]:
    """Embed each question once, not once per mode, while the rankings are taken (not timed).

    ``questions`` are embedded up front in batches of ``EMBED_BATCH``, many times faster on a
    CPU than one at a time, and searches then find their vector here. A batch pads each text
    to the longest, so a vector may differ from the single-text one in the last digits.
    """
    original = kb.embed
    memo: dict[object, Any] = {}

    def key(text: str, rest: tuple[Any, ...], options: dict[str, Any]) -> object:
        return (text, rest, tuple(sorted(options.items())))

    for start in range(0, len(questions), EMBED_BATCH):
        batch = list(questions[start : start + EMBED_BATCH])
        for text, vector in zip(batch, original(batch, side=QUERY), strict=True):
            memo[key(text, (), {"side": QUERY})] = vector[None, :]

    def embed(texts: Sequence[str], *rest: Any, **options: Any) -> Any:
        if len(texts) != 1:
            return original(texts, *rest, **options)
        found = key(texts[0], rest, options)
        if found not in memo:
            memo[found] = original(texts, *rest, **options)
        return memo[found]

    kb.embed = embed  # type: ignore[method-assign]
    try:
        yield
    finally:
        del kb.embed


def search_set(kb: KnowledgeBase, data: DataSet, args: argparse.Namespace) -> SetRun:
    out = SetRun()
    covers = kb.model_covers_cjk()
    out.dense_weights = [kb.fusion.dense_weight_for(q.text, covers) for q in data.queries]
    kb.search(data.queries[0].text, k=5)  # the BM25 index and the model loaded before timing
    n = len(data.queries)
    with embeddings_reused(kb, [q.text for q in data.queries]):
        for mode in MODES:
            rankings: list[list[Candidate]] = []
            hit4 = hit5 = 0
            for query in data.queries:
                hits = kb.search(query.text, k=DEPTH, mode=mode)
                rankings.append(candidates(hits, query))
                if data.squad:
                    gold_text = data.corpus.documents[query.gold]
                    matches = [contexts_match(hit.text, gold_text) for hit in hits[:5]]
                    hit4 += any(matches[:4])
                    hit5 += any(matches)
            if data.squad and data.corpus.form == "jsonl":
                r1 = r5 = mrr = math.nan  # every hit has one source: no per-document ranking
            else:
                r1, r5, mrr = score(rankings)
            out.measures[mode] = Measure(r1, r5, mrr, math.nan, math.nan)
            if data.squad:
                out.measures[mode].hit4, out.measures[mode].hit5 = hit4 / n, hit5 / n
            out.rankings[mode] = rankings
    for mode in MODES:  # timed afresh: every question embedded as a user's would be
        timings = []
        for query in data.queries[: args.latency_queries]:
            started = time.perf_counter()
            kb.search(query.text, k=5, mode=mode)
            timings.append((time.perf_counter() - started) * 1000)
        if timings:
            out.measures[mode].p50_ms = statistics.median(timings)
            out.measures[mode].p95_ms = percentile(timings, 0.95)
    return out


def run_embedder(label: str, sets: list[DataSet], home: Path, args: argparse.Namespace) -> EmbedderRun:
    run = EmbedderRun(label)
    corpora: dict[str, list[DataSet]] = {}
    for data in sets:
        corpora.setdefault(data.corpus.key, []).append(data)
    for group in corpora.values():
        corpus = group[0].corpus
        kb, ingest = open_kb(corpus, run, home, args)
        try:
            run.ingests[corpus.key] = ingest
            for data in group:
                run.sets[data.name] = search_set(kb, data, args)
                print_detail(data, run, kb)
                if args.relevance and data.squad:
                    relevance(kb, data.queries)
        finally:
            kb.close()
    return run


# ---- printing ---------------------------------------------------------------------------------
def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_detail(data: DataSet, run: EmbedderRun, kb: KnowledgeBase) -> None:
    ingest = run.ingests[data.corpus.key]
    result = run.sets[data.name]
    print(
        f"\nretrieval on {data.name} ({data.corpus.key} as {data.corpus.form}): "
        f"{ingest.documents} documents, "
        f"{ingest.chunks} chunks (chunk_size {kb.settings.chunk_size}, overlap {kb.settings.chunk_overlap}), "
        f"{len(data.queries)} questions, embedder {run.model}, {kb.settings.threads} threads, "
        f"{os.cpu_count()} CPUs; fusion {kb.fusion}"
    )
    rate = ingest.documents / ingest.seconds if ingest.seconds else math.nan
    print(
        f"ingest: {fmt(ingest.seconds, 1)} s = {fmt(rate, 1)} documents/s, "
        f"{fmt(ingest.chunks / ingest.seconds if ingest.seconds else math.nan, 1)} chunks/s "
        f"(read, chunk, embed, write); loading the embedder added {fmt(run.load_rss_mb, 0)} MB RSS"
    )
    header = (
        f"{'mode':<8} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>8} {'hit@4':>6} {'hit@5':>6} "
        f"{'p50 ms':>8} {'p95 ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for mode, m in result.measures.items():
        print(
            f"{mode:<8} {fmt(m.recall1):>9} {fmt(m.recall5):>9} {fmt(m.mrr10):>8} {fmt(m.hit4):>6} "
            f"{fmt(m.hit5):>6} {m.p50_ms:>8.1f} {m.p95_ms:>8.1f}",
            flush=True,
        )


def print_side_by_side(sets: list[DataSet], runs: list[EmbedderRun]) -> None:
    print("\nrecall@1 / recall@5 / MRR@10 (p95 ms at k=5), side by side:\n")
    print("| data set | questions | mode | " + " | ".join(r.model or r.label for r in runs) + " |")
    print("|---|---|---|" + "---|" * len(runs))
    for data in sets:
        for mode in MODES:
            cells = []
            for run in runs:
                m = run.sets[data.name].measures[mode]
                cells.append(f"{fmt(m.recall1)} / {fmt(m.recall5)} / {fmt(m.mrr10)} ({m.p95_ms:.1f})")
            print(f"| {data.name} | {len(data.queries)} | {mode} | " + " | ".join(cells) + " |")
    print("\ningest and memory:\n")
    print(
        "| embedder | "
        + " | ".join(f"{key} documents/s (chunks/s)" for key in runs[0].ingests)
        + " | RSS added by loading it |"
    )
    print("|---|" + "---|" * (len(runs[0].ingests) + 1))
    for run in runs:
        cells = []
        for ingest in run.ingests.values():
            docs = ingest.documents / ingest.seconds if ingest.seconds else math.nan
            chunks = ingest.chunks / ingest.seconds if ingest.seconds else math.nan
            cells.append(f"{fmt(docs, 1)} ({fmt(chunks, 1)})")
        print(f"| {run.model or run.label} | " + " | ".join(cells) + f" | {fmt(run.load_rss_mb, 0)} MB |")
    print(f"\npeak RSS of the process (every embedder above loaded in it): {peak_rss_mb():.0f} MB")


# ---- targets (issue 17) ---------------------------------------------------------------------------
Check = Callable[[EmbedderRun, list[DataSet]], tuple[str, bool] | None]


def _squad(sets: list[DataSet]) -> DataSet | None:
    return next((d for d in sets if d.squad and d.corpus.form == "txt"), None)


def _named(sets: list[DataSet], name: str) -> DataSet | None:
    return next((d for d in sets if d.name == name), None)


def _cmrc_dense(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _squad(sets)
    if data is None:
        return None
    value = run.sets[data.name].measures["dense"].recall5
    return fmt(value), value >= 0.80


def _cmrc_hybrid(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _squad(sets)
    if data is None:
        return None
    value = run.sets[data.name].measures["hybrid"].recall5
    return fmt(value), value >= 0.992


def _cmrc_best_single(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _squad(sets)
    if data is None:
        return None
    m = run.sets[data.name].measures
    best_r5 = max(m["dense"].recall5, m["bm25"].recall5)
    best_mrr = max(m["dense"].mrr10, m["bm25"].mrr10)
    ok = m["hybrid"].recall5 >= best_r5 and m["hybrid"].mrr10 >= best_mrr
    return f"{fmt(m['hybrid'].recall5)}/{fmt(m['hybrid'].mrr10)} vs {fmt(best_r5)}/{fmt(best_mrr)}", ok


def _paraphrase(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _named(sets, "paraphrase_zh")
    if data is None:
        return None
    m = run.sets[data.name].measures
    gain = m["hybrid"].recall5 - m["bm25"].recall5
    return f"{fmt(m['hybrid'].recall5)} - {fmt(m['bm25'].recall5)} = {gain:+.3f}", gain >= 0.15 - 1e-9


def _en_to_zh(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _named(sets, "en_to_zh")
    if data is None:
        return None
    value = run.sets[data.name].measures["hybrid"].recall5
    return fmt(value), value >= 0.80


def _ingest(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _squad(sets)
    if data is None or math.isnan(run.ingests[data.corpus.key].seconds):
        return None
    ingest = run.ingests[data.corpus.key]
    rate = ingest.documents / ingest.seconds
    return f"{rate:.1f}/s", rate >= 5


def _p95(run: EmbedderRun, sets: list[DataSet]) -> tuple[str, bool] | None:
    data = _squad(sets)
    if data is None:
        return None
    worst = max(m.p95_ms for m in run.sets[data.name].measures.values())
    return f"{worst:.1f} ms", worst < 50


TARGETS: list[tuple[str, Check]] = [
    ("CMRC dense recall@5 >= 0.80", _cmrc_dense),
    ("CMRC hybrid recall@5 >= 0.992", _cmrc_hybrid),
    ("CMRC hybrid >= best single mode (recall@5 / MRR@10)", _cmrc_best_single),
    ("paraphrase hybrid recall@5 >= BM25 + 0.15", _paraphrase),
    ("English-to-Chinese hybrid recall@5 >= 0.80", _en_to_zh),
    ("CMRC ingest >= 5 documents/s", _ingest),
    ("CMRC query p95 < 50 ms (slowest mode, k=5)", _p95),
]


def target_rows(sets: list[DataSet], runs: list[EmbedderRun]) -> list[list[str]]:
    """One row per target: its name, then "value pass|FAIL" (or "n/a") per embedder."""
    rows = []
    for name, check in TARGETS:
        cells = [name]
        for run in runs:
            result = check(run, sets)
            cells.append("n/a" if result is None else f"{result[0]} {'pass' if result[1] else 'FAIL'}")
        rows.append(cells)
    return rows


def print_targets(sets: list[DataSet], runs: list[EmbedderRun]) -> None:
    print("\ntargets (issue 17):\n")
    print("| target | " + " | ".join(r.model or r.label for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for row in target_rows(sets, runs):
        print("| " + " | ".join(row) + " |")
    memory = " | ".join(f"{fmt(r.load_rss_mb, 0)} MB" for r in runs)
    print(f"| RSS added by loading the embedder (reported) | {memory} |")
    print(
        f"| peak RSS of the process, all embedders (reported) | {peak_rss_mb():.0f} MB |"
        + " |" * (len(runs) - 1)
    )


# ---- --tune -------------------------------------------------------------------------------------
def replay(
    fusion: Fusion,
    dense: Sequence[Candidate],
    bm25: Sequence[Candidate],
    weight: float,
    hybrid: Sequence[Candidate] = (),
) -> list[Candidate]:
    """The hybrid ranking ``fusion`` gives from a query's dense and BM25 rankings (no new search).

    The dense ranking is the knowledge base's whole dense candidate list; its lowest cosine is
    convex fusion's floor. A BM25 candidate missing from it (the dense index is approximate, so
    its cosine may still be above the floor) takes its cosine from the hybrid ranking when it is
    there, as search computes it; else it gets no dense credit.
    """
    import numpy as np

    by_id = {c.chunk_id: c for c in [*hybrid, *bm25, *dense]}
    if fusion.method == "convex":
        cosines = {c.chunk_id: c.cosine for c in dense if c.cosine is not None}
        floor = min(cosines.values()) if cosines else None
        lexical = {c.chunk_id for c in bm25}
        for c in hybrid:
            if c.chunk_id in lexical and c.chunk_id not in cosines and c.cosine is not None:
                cosines[c.chunk_id] = c.cosine
        scores = {c.chunk_id: c.bm25 for c in [*bm25, *dense] if c.bm25 is not None}
        if "bm25_evidence" in inspect.signature(fusion.combine).parameters:
            # BM25's weight scaled by how much of the question its best chunk holds, as search does.
            evidence = bm25[0].coverage if bm25 and bm25[0].coverage is not None else 1.0
            fused = fusion.combine(cosines, scores, floor, weight, bm25_evidence=evidence)
        else:
            fused = fusion.combine(cosines, scores, floor, weight)
    else:
        places = fusion.bm25_places(np.array([c.bm25 or 0.0 for c in bm25]), DEPTH)
        tied = [bm25[p].chunk_id for p, _first, _last in places]
        spans = [(first, last) for _p, first, last in places]
        fused = fusion.fuse([c.chunk_id for c in dense], tied, weight, spans)
    return [by_id[chunk_id] for chunk_id, _ in fused]


def tune(data: DataSet, run: EmbedderRun) -> None:
    """Fusion settings scored from the stored rankings; the dense weight applies to every question."""
    assert run.fusion is not None
    result = run.sets[data.name]
    dense, bm25, hybrid = result.rankings["dense"], result.rankings["bm25"], result.rankings["hybrid"]
    own = [
        replay(run.fusion, d, b, w, h)
        for d, b, w, h in zip(dense, bm25, result.dense_weights, hybrid, strict=True)
    ]
    same = sum(
        top10(gold_rank(a)) == top10(gold_rank(b))
        for a, b in zip(own, result.rankings["hybrid"], strict=True)
    )
    print(
        f"\nfusion grid on {data.name} ({len(data.queries)} questions), {run.model}: recall@1 / recall@5 / "
        f"MRR@10, bm25_weight 1, the dense weight for every question (replaying the knowledge base's own "
        f"fusion gives its hybrid search's gold rank in the top 10 on {same} of {len(own)} questions)"
    )
    print(f"{'fusion':<10} " + " ".join(f"{'w_dense=' + str(w):>19}" for w in TUNE_WEIGHTS))
    settings = [("convex", replace(run.fusion, method="convex"))] + [
        (f"rrf k={k}", replace(run.fusion, method="rrf", k=float(k))) for k in TUNE_RRF_K
    ]
    for label, fusion in settings:
        cells = []
        for weight in TUNE_WEIGHTS:
            rankings = [replay(fusion, d, b, weight, h) for d, b, h in zip(dense, bm25, hybrid, strict=True)]
            r1, r5, mrr = score(rankings)
            cells.append(f"{r1:.3f}/{r5:.3f}/{mrr:.3f}")
        print(f"{label:<10} " + " ".join(f"{c:>19}" for c in cells))


def top10(place: int | None) -> int | None:
    """A gold place as the metrics see it: past 10 (or past the search's cut) is a miss."""
    return place if place is not None and place <= 10 else None


def replace(fusion: Fusion, **changes: object) -> Fusion:
    return dataclasses.replace(fusion, **changes)  # type: ignore[arg-type]


def relevance(kb: KnowledgeBase, queries: list[Query]) -> None:
    inside = [kb.search(q.text, k=5) for q in queries[:300]]
    outside = [kb.search(q, k=5) for q in OUT_OF_KB]

    def best(hits_lists: list[list[Hit]]) -> list[float]:
        return sorted(max((h.score for h in hits), default=0.0) for hits in hits_lists)

    def describe(values: list[float]) -> str:
        return " ".join(f"p{int(q * 100)}={percentile(values, q):.2f}" for q in (0.05, 0.25, 0.5, 0.75, 0.95))

    print("\nbest Hit.score per question (hybrid):")
    print(f"  answer in the KB ({len(inside)} questions):     {describe(best(inside))}")
    print(f"  answer not in the KB ({len(outside)} questions): {describe(best(outside))}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="SQuAD-format JSON (e.g. cmrc2018_dev.json)")
    parser.add_argument(
        "--sets",
        nargs="*",
        choices=PROJECT_SETS,
        default=list(PROJECT_SETS),
        help="the project's retrieval sets to run (default both; --sets alone: none)",
    )
    parser.add_argument(
        "--split", choices=("tune", "check", "all"), default="all", help="which half of the project's sets"
    )
    parser.add_argument(
        "--embedder",
        action="append",
        default=None,
        help="embedding_model for the knowledge bases (repeatable): a pack name, all-MiniLM-L6-v2 or a "
        "folder; 'default' (the default) leaves the setting as configured",
    )
    parser.add_argument(
        "--distractors",
        type=int,
        default=0,
        help="also search the project's sets in a knowledge base of the demo files and the first N "
        "contexts of --data (the demo files alone are 9 chunks)",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N questions of --data")
    parser.add_argument("--latency-queries", type=int, default=300, help="questions timed at k=5 per mode")
    parser.add_argument(
        "--as",
        dest="form",
        choices=("txt", "jsonl"),
        default="txt",
        help="ingest the contexts as one .txt file each (default) or as the records of one JSONL file",
    )
    parser.add_argument("--passages", type=int, default=None, help="use only the first N contexts of --data")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="for --data (the project's sets: default)"
    )
    parser.add_argument("--chunk-overlap", type=int, default=None, help="for --data")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="LADDER_HOME to build the KBs in and keep (default: a temporary folder)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --home: search the KBs a previous run built instead of ingesting again",
    )
    parser.add_argument("--tune", action="store_true", help="also print a grid of fusion settings per set")
    parser.add_argument(
        "--relevance", action="store_true", help="also print best-hit scores in and out of the KB (--data)"
    )
    args = parser.parse_args(argv)
    if args.data is None and not args.sets:
        parser.error("nothing to run: give --data or --sets")
    if args.distractors and args.data is None:
        parser.error("--distractors takes its documents from --data")
    return args


def temporary_home(home: Path) -> Path:
    """A LADDER_HOME for the benchmark's knowledge bases that still sees the installed model
    packs (``--embedder multilingual-e5-small``): its ``models`` links to the real home's."""
    models = load_settings().models_dir
    home.mkdir(parents=True)
    if models.is_dir():
        (home / "models").symlink_to(models.resolve(), target_is_directory=True)
    return home


def main(argv: Sequence[str] | None = None) -> list[EmbedderRun]:
    args = parse_args(argv)
    embedders = args.embedder or ["default"]
    with tempfile.TemporaryDirectory(prefix="ladder-bench-") as tmp:
        home = args.home or temporary_home(Path(tmp) / "home")
        sets: list[DataSet] = []
        if args.data is not None:
            sets.append(squad_corpus(args, Path(tmp) / "docs"))
        if args.sets:
            demo = demo_corpus(Path(tmp) / "demo", {})
            for name in args.sets:
                sets.append(DataSet(name, demo, load_project_set(name, args.split)))
        if args.sets and args.distractors:  # the same questions again, among more passages
            distractors = dict(list(sets[0].corpus.documents.items())[: args.distractors])
            crowded = demo_corpus(Path(tmp) / "demo-distractors", distractors)
            for name in args.sets:
                sets.append(
                    DataSet(f"{name}+{len(distractors)}", crowded, load_project_set(name, args.split))
                )
        libraries_mb = load_libraries()
        runs = [run_embedder(label, sets, home, args) for label in embedders]
        print_side_by_side(sets, runs)
        print(
            f"importing torch and sentence-transformers added {libraries_mb:.0f} MB RSS "
            "(once, before any embedder)"
        )
        print_targets(sets, runs)
        if args.tune:
            for data in sets:
                for run in runs:
                    tune(data, run)
    return runs


if __name__ == "__main__":
    main()
