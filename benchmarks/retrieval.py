"""Retrieval quality and speed of the knowledge base: dense, BM25 and hybrid, in one run.

    .venv/bin/python benchmarks/retrieval.py --data ../shared/data/cmrc2018/cmrc2018_dev.json

The data is SQuAD-format JSON (CMRC 2018). Every distinct context becomes one document
(a .txt file in a temporary folder, ingested through ``KnowledgeBase.add`` like a user's
files; with ``--as jsonl`` one record of a single JSONL file instead), every question a
query whose gold document is its context. A hit on any chunk of the gold context counts,
so hits are deduplicated by source before ranking.

Printed: recall@1, recall@5 and MRR@10 per mode (by document: .txt only, since the hits of
a JSONL file all share its source); hit@4 and hit@5 as a decision's RAG rung scores them
(the top k *chunks*, a chunk matching the gold passage by the text rule of
``evaluation.metrics.retrieval.contexts_match``); ingest throughput (documents/s,
chunks/s); query latency p50/p95 at k=5 (no reranker). ``--passages N`` keeps the first N
contexts and their questions, for a run of minutes. Targets: hybrid recall@5 >= 0.95,
hybrid >= the better of dense and BM25 alone, p95 < 100 ms on 2 cores.

``--tune`` also prints a grid of fusion settings (k, dense weight) scored from the same
dense and BM25 rankings, which is how the defaults in ``assistant.knowledge.Fusion`` were
chosen (on cmrc2018_trial.json, then checked on dev). ``--relevance`` prints the
``Hit.score`` of the best hit for the benchmark's questions and for questions whose answer
is not in the knowledge base, to help pick a "not in the knowledge base" threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import assistant  # noqa: F401  (offline env first)
from assistant.knowledge import Fusion, Hit, KnowledgeBase
from assistant.settings import load_settings
from evaluation.metrics.retrieval import contexts_match

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
    gold: str  # document file name


@dataclass
class Row:
    mode: str
    recall1: float
    recall5: float
    mrr10: float
    hit4: float
    hit5: float
    p50_ms: float
    p95_ms: float


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


def ranked_documents(hits: Sequence[Hit]) -> list[str]:
    """Document names in order of their best chunk."""
    return list(dict.fromkeys(Path(hit.source).name for hit in hits))


def score(rankings: Sequence[list[str]], queries: Sequence[Query]) -> tuple[float, float, float]:
    r1 = r5 = mrr = 0.0
    for ranking, query in zip(rankings, queries, strict=True):
        if query.gold in ranking[:1]:
            r1 += 1
        if query.gold in ranking[:5]:
            r5 += 1
        if query.gold in ranking[:10]:
            mrr += 1 / (ranking.index(query.gold) + 1)
    n = len(queries)
    return r1 / n, r5 / n, mrr / n


def chunk_hits(
    hits_lists: Sequence[Sequence[Hit]], queries: Sequence[Query], documents: dict[str, str], k: int
) -> float:
    """Share of questions with a top-``k`` chunk matching the gold passage by text (a decision's hit@k)."""
    found = sum(
        any(contexts_match(hit.text, documents[query.gold]) for hit in hits[:k])
        for hits, query in zip(hits_lists, queries, strict=True)
    )
    return found / len(queries)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="SQuAD-format JSON (e.g. cmrc2018_dev.json)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N questions")
    parser.add_argument("--latency-queries", type=int, default=300, help="questions timed at k=5 per mode")
    parser.add_argument(
        "--as",
        dest="form",
        choices=("txt", "jsonl"),
        default="txt",
        help="ingest the contexts as one .txt file each (default) or as the records of one JSONL file",
    )
    parser.add_argument("--passages", type=int, default=None, help="use only the first N contexts")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--chunk-overlap", type=int, default=None)
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="LADDER_HOME to build the KB in and keep (default: a temporary folder)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --home: search the KB a previous run built instead of ingesting again",
    )
    parser.add_argument("--tune", action="store_true", help="also print a grid of fusion settings")
    parser.add_argument(
        "--relevance", action="store_true", help="also print best-hit scores in and out of the KB"
    )
    args = parser.parse_args()

    documents, queries = load_squad(args.data)
    if args.passages:
        documents = dict(list(documents.items())[: args.passages])
        queries = [q for q in queries if q.gold in documents]
    if args.limit:
        queries = queries[: args.limit]
    with tempfile.TemporaryDirectory(prefix="ladder-bench-") as tmp:
        home = args.home or Path(tmp) / "home"
        docs_dir = Path(tmp) / "docs"
        docs_dir.mkdir()
        if args.form == "jsonl":
            records = (json.dumps({"id": n, "text": t}, ensure_ascii=False) for n, t in documents.items())
            (docs_dir / "passages.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")
        else:
            for name, text in documents.items():
                (docs_dir / name).write_text(text, encoding="utf-8")
        flags = {
            "home": str(home),
            "allowed_roots": str(docs_dir),
            "chunk_size": args.chunk_size,
            "chunk_overlap": args.chunk_overlap,
        }
        settings = load_settings(flags)
        name = f"bench-{args.data.stem}-{args.form}-{settings.chunk_size}-{settings.chunk_overlap}"
        if args.reuse and args.home and name in KnowledgeBase.list_all(settings):
            kb = KnowledgeBase.open(name, settings)
            chunks, ingest_s = kb.info()["chunks"], float("nan")
        else:
            if name in KnowledgeBase.list_all(settings):
                KnowledgeBase.delete(name, settings)
            kb = KnowledgeBase.create(name, settings)
            started = time.perf_counter()
            report = kb.add([docs_dir])
            ingest_s = time.perf_counter() - started
            if not report.ok:
                raise SystemExit(f"ingest failed: {report.failed[:3]}")
            chunks = report.chunks_added
        run(kb, queries, documents, chunks, ingest_s, settings.threads, args)


def run(
    kb: KnowledgeBase,
    queries: list[Query],
    documents: dict[str, str],
    chunks: int,
    ingest_s: float,
    threads: int,
    args: argparse.Namespace,
) -> None:
    kb.search(queries[0].text, k=5)  # load the model and the index before timing
    depth = 30  # chunks fetched per query, enough for 10 distinct documents
    rows: list[Row] = []
    lists: dict[str, list[list[Hit]]] = {}
    for mode in ("dense", "bm25", "hybrid"):
        lists[mode] = [kb.search(q.text, k=depth, mode=mode) for q in queries]
        timings = []
        for query in queries[: args.latency_queries]:
            started = time.perf_counter()
            kb.search(query.text, k=5, mode=mode)
            timings.append((time.perf_counter() - started) * 1000)
        if args.form == "txt":
            r1, r5, mrr = score([ranked_documents(h) for h in lists[mode]], queries)
        else:  # every hit has the JSONL file as its source: no per-document ranking
            r1 = r5 = mrr = float("nan")
        hit4, hit5 = (chunk_hits(lists[mode], queries, documents, k) for k in (4, 5))
        p50, p95 = (statistics.median(timings), percentile(timings, 0.95)) if timings else (0.0, 0.0)
        rows.append(Row(mode, r1, r5, mrr, hit4, hit5, p50, p95))

    print(
        f"\nretrieval on {args.data.name} as {args.form}: {len(documents)} documents, {chunks} chunks "
        f"(chunk_size {kb.settings.chunk_size}, overlap {kb.settings.chunk_overlap}), "
        f"{len(queries)} questions, {threads} threads, {os.cpu_count()} CPUs; fusion {kb.fusion}"
    )
    print(
        f"ingest: {ingest_s:.1f} s = {len(documents) / ingest_s:.1f} documents/s, "
        f"{chunks / ingest_s:.1f} chunks/s (read, chunk, embed with all-MiniLM-L6-v2, write)"
    )
    header = (
        f"{'mode':<8} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>8} {'hit@4':>6} {'hit@5':>6} "
        f"{'p50 ms':>8} {'p95 ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.mode:<8} {row.recall1:>9.3f} {row.recall5:>9.3f} {row.mrr10:>8.3f} {row.hit4:>6.3f} "
            f"{row.hit5:>6.3f} {row.p50_ms:>8.1f} {row.p95_ms:>8.1f}"
        )
    if args.form == "txt":  # the targets are per document
        targets(rows)

    if args.tune:
        tune(lists["dense"], lists["bm25"], queries)
    if args.relevance:
        relevance(kb, queries)


def targets(rows: list[Row]) -> None:
    by_mode = {row.mode: row for row in rows}
    best_single = max(by_mode["dense"].recall5, by_mode["bm25"].recall5)
    best_mrr = max(by_mode["dense"].mrr10, by_mode["bm25"].mrr10)
    hybrid = by_mode["hybrid"]
    print(
        f"targets: hybrid recall@5 >= 0.95: {'met' if hybrid.recall5 >= 0.95 else 'MISSED'}; "
        f"hybrid >= best single (recall@5 and MRR@10): "
        f"{'met' if hybrid.recall5 >= best_single and hybrid.mrr10 >= best_mrr else 'MISSED'}; "
        f"p95 < 100 ms: {'met' if max(r.p95_ms for r in rows) < 100 else 'MISSED'}"
    )


def tune(dense: list[list[Hit]], bm25: list[list[Hit]], queries: list[Query]) -> None:
    """Fusion settings scored from the stored rankings (no new searches)."""
    print("\nfusion grid (recall@1 / recall@5 / MRR@10):")
    source = {h.chunk_id: Path(h.source).name for hits in dense + bm25 for h in hits}
    print(f"{'k':>5} " + " ".join(f"{'w_dense=' + str(w):>22}" for w in (0.0, 0.05, 0.1, 0.3, 0.5, 1.0)))
    for k in (1, 5, 10, 20, 60):
        cells = []
        for weight in (0.0, 0.05, 0.1, 0.3, 0.5, 1.0):
            fusion = Fusion(k=k, dense_weight=weight, bm25_weight=1.0)
            rankings = []
            for d, b in zip(dense, bm25, strict=True):
                fused = fusion.fuse([h.chunk_id for h in d], [h.chunk_id for h in b])
                rankings.append(list(dict.fromkeys(source[c] for c, _ in fused)))
            r1, r5, mrr = score(rankings, queries)
            cells.append(f"{r1:.3f}/{r5:.3f}/{mrr:.3f}")
        print(f"{k:>5} " + " ".join(f"{c:>22}" for c in cells))


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


if __name__ == "__main__":
    main()
