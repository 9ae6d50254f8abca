"""Does the LLM relevance reranker pay? R@1 gain against added latency, per model and depth.

    .venv/bin/python benchmarks/rerank.py --questions 40 \\
        --data ../shared/data/cmrc2018/cmrc2018_dev.json --cmrc-questions 100

(docs/knowledge-bases.md, "Reranking", has a run of 10 questions per set; on 2 cores each
reranked query costs 10 to 30 s, so size a run to that.)

For every question the knowledge base's hybrid search (no reranker) returns the top 20
chunks; that ranking is the baseline. Then ``assistant.knowledge.rerank.LLMReranker`` reorders
the top 10, and separately the top 20, for each model (``--model``, repeatable; default the
demo pack qwen2.5-coder-0.5b and the test pack smollm2-135m), and the same metrics are taken
on the new order. Only the rerank call is timed: that is the latency reranking adds to a query.

Data sets:
- the project's retrieval sets, ``datasets/retrieval/paraphrase_zh.jsonl`` and
  ``en_to_zh.jsonl`` (``{question, gold: {source, evidence}}``), over ``datasets/demo/kb``: a
  chunk is gold when it contains the evidence; the unit ranked is the chunk;
- any suite (``--suite FILE.jsonl:KB_FOLDER``, repeatable): ``user_input`` and
  ``reference_contexts``, a chunk is gold when it matches a reference context by the text rule
  of ``evaluation.metrics.retrieval.contexts_match``; the default when the retrieval sets are
  missing is the demo's ``private_facts_test`` over ``datasets/demo/kb``;
- ``--data``: a SQuAD-format JSON (CMRC 2018 dev), every context one ``.txt`` document;
  ``--cmrc-questions`` questions spread evenly over the file; the unit ranked is the document
  (a question's hits are deduplicated by source).

Printed per set and model: R@1, R@5 and MRR@10 before and after, the R@1 gain, and the added
latency per query (p50/p95, nearest rank). The verdict line says "pays" only where the R@1
gain averaged over the sets is at least ``MIN_GAIN`` and the worst set's p95 added latency is
within ``ACCEPTABLE_P95_S`` (docs/knowledge-bases.md, "Reranking").
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import assistant  # noqa: F401  (offline env first)
from assistant.knowledge import Hit, KnowledgeBase
from assistant.knowledge.rerank import LLMReranker, judge_backend
from assistant.settings import Settings, load_settings
from evaluation.metrics.retrieval import contexts_match

ROOT = Path(__file__).resolve().parent.parent
DEMO_KB = ROOT / "datasets" / "demo" / "kb"
RETRIEVAL_SETS = ("paraphrase_zh", "en_to_zh")
CANDIDATES = 20
DEPTHS = (10, 20)
MODELS = ("qwen2.5-coder-0.5b", "smollm2-135m")
# A reranker pays when it lifts R@1 by this much (averaged over the sets) ...
MIN_GAIN = 0.05
# ... and adds at most this much to a query at p95: a fifth of the decision's default answer
# limit (max_p95_latency_s 5 s), so reranking cannot by itself push a chat answer over it.
ACCEPTABLE_P95_S = 1.0


@dataclass
class Item:
    question: str
    is_gold: Callable[[Hit], bool]


@dataclass
class DataSet:
    name: str
    kb_folder: Path
    items: list[Item]
    unit: Callable[[Hit], str]  # what is ranked: a chunk, or a document


@dataclass
class Scores:
    recall1: float
    recall5: float
    mrr10: float


def spread(items: Sequence[Item], n: int | None) -> list[Item]:
    """``n`` items spread evenly over ``items`` (all when ``n`` is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def _contains(evidence: str) -> Callable[[Hit], bool]:
    return lambda hit: evidence in hit.text


def _matches(references: list[str]) -> Callable[[Hit], bool]:
    return lambda hit: any(contexts_match(hit.text, r) for r in references)


def _from_document(name: str) -> Callable[[Hit], bool]:
    return lambda hit: Path(hit.source).name == name


def retrieval_set(path: Path, kb_folder: Path) -> DataSet:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            evidence = record["gold"]["evidence"]
            items.append(Item(record["question"], _contains(evidence)))
    return DataSet(path.stem, kb_folder, items, unit=lambda hit: hit.chunk_id)


def suite_set(path: Path, kb_folder: Path) -> DataSet:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            references = record.get("reference_contexts") or []
            if references:
                items.append(Item(record["user_input"], _matches(references)))
    return DataSet(path.stem, kb_folder, items, unit=lambda hit: hit.chunk_id)


def squad_set(path: Path, docs_dir: Path, passages: int | None = None) -> DataSet:
    """Every distinct context (the first ``passages``) a .txt file in ``docs_dir``; every question an item."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    names: dict[str, str] = {}
    items: list[Item] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"].strip()
            if context not in names and passages is not None and len(names) >= passages:
                continue
            if context not in names:
                names[context] = f"doc-{len(names):05d}.txt"
                (docs_dir / names[context]).write_text(context, encoding="utf-8")
            gold = names[context]
            items.extend(
                Item(qa["question"].strip(), _from_document(gold))
                for qa in paragraph["qas"]
                if qa["question"].strip()
            )
    return DataSet(path.stem, docs_dir, items, unit=lambda hit: Path(hit.source).name)


def score(ranked: Sequence[Sequence[Hit]], data: DataSet, items: Sequence[Item]) -> Scores:
    r1 = r5 = mrr = 0.0
    for hits, item in zip(ranked, items, strict=True):
        units: dict[str, bool] = {}
        for hit in hits:  # a unit's place is that of its best hit
            unit = data.unit(hit)
            units[unit] = units.get(unit, False) or item.is_gold(hit)
        flags = list(units.values())
        rank = next((i for i, gold in enumerate(flags[:10], start=1) if gold), None)
        r1 += rank == 1
        r5 += rank is not None and rank <= 5
        mrr += 1 / rank if rank else 0.0
    n = len(items)
    return Scores(r1 / n, r5 / n, mrr / n)


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def open_kb(data: DataSet, home: Path, embedder: str | None) -> KnowledgeBase:
    """A knowledge base of ``data.kb_folder`` under ``home``, built once and reused."""
    settings = load_settings(
        {"home": str(home), "allowed_roots": str(data.kb_folder), "embedding_model": embedder}
    )
    name = f"rerank-{data.name}".replace("_", "-").replace(".", "-")
    if name in KnowledgeBase.list_all(settings):
        return KnowledgeBase.open(name, settings)
    kb = KnowledgeBase.create(name, settings)
    report = kb.add([data.kb_folder])
    if not report.ok:
        raise SystemExit(f"ingest of {data.kb_folder} failed: {report.failed[:3]}")
    return kb


@dataclass
class Row:
    data: str
    model: str
    depth: int
    scores: Scores
    gain: float
    p50_s: float
    p95_s: float


def measure(
    data: DataSet,
    items: list[Item],
    kb: KnowledgeBase,
    models: Sequence[str],
    depths: Sequence[int],
    judge_settings: Settings,
) -> tuple[Scores, list[Row]]:
    candidates = [kb.search(item.question, k=CANDIDATES, mode="hybrid", rerank=False) for item in items]
    base = score(candidates, data, items)
    rows = []
    for model in models:
        backend = judge_backend(model, judge_settings)
        LLMReranker(backend).rerank(items[0].question, copy.deepcopy(candidates[0]), 1)  # load, warm up
        pool = max(len(hits) for hits in candidates)
        covered = False  # a depth that reads every candidate: a deeper one changes nothing
        for depth in depths:
            if covered:
                print(f"  {data.name}: top {depth} = top {pool}, no question has more candidates")
                continue
            covered = depth >= pool
            reranker = LLMReranker(backend, depth=depth)
            ranked, seconds = [], []
            for item, hits in zip(items, candidates, strict=True):
                fresh = [copy.copy(h) for h in hits]
                started = time.perf_counter()
                ranked.append(reranker.rerank(item.question, fresh, CANDIDATES))
                seconds.append(time.perf_counter() - started)
            after = score(ranked, data, items)
            rows.append(
                Row(
                    data.name,
                    model,
                    depth,
                    after,
                    after.recall1 - base.recall1,
                    statistics.median(seconds),
                    nearest_rank(seconds, 0.95),
                )
            )
            print(
                f"  {data.name} {model} top {depth}: R@1 {base.recall1:.3f} -> {after.recall1:.3f}",
                flush=True,
            )
    return base, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", action="append", help=f"model reference (repeatable; default {MODELS})")
    parser.add_argument("--questions", type=int, default=40, help="questions per project set (spread evenly)")
    parser.add_argument("--suite", action="append", default=[], help="SUITE.jsonl:KB_FOLDER (repeatable)")
    parser.add_argument("--data", type=Path, default=None, help="SQuAD-format JSON (CMRC 2018 dev)")
    parser.add_argument(
        "--cmrc-questions", type=int, default=100, help="questions from --data (spread evenly)"
    )
    parser.add_argument("--depth", type=int, action="append", help=f"candidates reranked (default {DEPTHS})")
    parser.add_argument("--cmrc-passages", type=int, default=None, help="keep only the first N CMRC contexts")
    parser.add_argument(
        "--embedder", default=None, help="the knowledge bases' embedding_model (default: the default)"
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="LADDER_HOME for the knowledge bases (kept, reused)"
    )
    args = parser.parse_args()
    models = args.model or list(MODELS)
    depths = sorted(set(args.depth or DEPTHS))

    with tempfile.TemporaryDirectory(prefix="ladder-rerank-") as tmp:
        home = args.home or Path(tmp) / "home"
        sets: list[DataSet] = []
        for name in RETRIEVAL_SETS:
            path = ROOT / "datasets" / "retrieval" / f"{name}.jsonl"
            if path.is_file():
                sets.append(retrieval_set(path, DEMO_KB))
        suites = args.suite or (
            [] if sets else [f"{ROOT}/datasets/demo/suites/private_facts_test.jsonl:{DEMO_KB}"]
        )
        for spec in suites:
            suite_path, _, folder = spec.rpartition(":")
            sets.append(suite_set(Path(suite_path), Path(folder)))
        sample = {data.name: spread(data.items, args.questions) for data in sets}
        if args.data:
            docs = Path(tmp) / "cmrc-docs"
            docs.mkdir()
            cmrc = squad_set(args.data, docs, args.cmrc_passages)
            sets.append(cmrc)
            sample[cmrc.name] = spread(cmrc.items, args.cmrc_questions)

        judge_settings = load_settings({})
        # The knowledge bases' home sees the installed packs (an embedder pack is one).
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "models").exists() and judge_settings.models_dir.is_dir():
            (home / "models").symlink_to(judge_settings.models_dir)
        load = os.getloadavg()
        results: list[tuple[DataSet, Scores, list[Row]]] = []
        for data in sets:
            kb = open_kb(data, home, args.embedder)
            base, rows = measure(data, sample[data.name], kb, models, depths, judge_settings)
            results.append((data, base, rows))
        report(results, sample, models, depths, judge_settings, load)


def report(
    results: list[tuple[DataSet, Scores, list[Row]]],
    sample: dict[str, list[Item]],
    models: Sequence[str],
    depths: Sequence[int],
    settings: Settings,
    load_before: tuple[float, float, float],
) -> None:
    load_after = os.getloadavg()
    print(
        f"\nLLM reranker over hybrid top {CANDIDATES}; {settings.threads} threads, {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} / {load_after[1]:.1f} / "
        f"{load_after[2]:.1f} (1/5/15 min) after"
    )
    header = (
        f"{'set':<16} {'n':>4} {'model':<20} {'rerank':>7} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} "
        f"{'R@1 gain':>9} {'added p50':>10} {'added p95':>10}"
    )
    print(header)
    print("-" * len(header))
    for data, base, rows in results:
        n = len(sample[data.name])
        print(
            f"{data.name:<16} {n:>4} {'(retrieval only)':<20} {'-':>7} {base.recall1:>6.3f} "
            f"{base.recall5:>6.3f} {base.mrr10:>7.3f}"
        )
        for row in rows:
            print(
                f"{'':<16} {'':>4} {row.model:<20} {'top ' + str(row.depth):>7} {row.scores.recall1:>6.3f} "
                f"{row.scores.recall5:>6.3f} {row.scores.mrr10:>7.3f} {row.gain:>+9.3f} "
                f"{row.p50_s * 1000:>8.0f}ms {row.p95_s * 1000:>8.0f}ms"
            )
    print(
        f"\nverdict (pays: mean R@1 gain >= {MIN_GAIN} and every set's added p95 "
        f"<= {ACCEPTABLE_P95_S:.1f} s):"
    )
    for model in models:
        for depth in depths:
            picked = [r for _d, _b, rows in results for r in rows if r.model == model and r.depth == depth]
            if not picked:
                continue
            gain = statistics.mean(r.gain for r in picked)
            worst = max(r.p95_s for r in picked)
            pays = gain >= MIN_GAIN and worst <= ACCEPTABLE_P95_S
            print(
                f"  {model} top {depth}: {'pays' if pays else 'does not pay'} "
                f"(mean R@1 gain {gain:+.3f}, worst added p95 {worst:.2f} s)"
            )


if __name__ == "__main__":
    main()
