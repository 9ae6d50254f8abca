"""The second-pass answer check of ``ladder suite generate``: what it keeps and drops, by threshold.

    .venv/bin/python benchmarks/generate_check.py --kb qinghe-demo --kb heldout-port_facts \
        [--model qwen2.5-coder-0.5b] [--n 16] [--out benchmarks/out/generate_check]

For each knowledge base (already built in LADDER_HOME: `ladder demo` builds qinghe-demo,
benchmarks/scenarios.py the heldout-* ones) it generates ``n`` items with the second pass on and
``min_agreement`` 0, so that every item that passed the first-pass checks is answered again and
recorded, then writes ``<kb>.jsonl`` (question, reference, second answer, passages, the verdict
at the time) and prints each item's verdict under today's rules and, per threshold, how many
items as generated are kept, and how many known-bad variants built from them (a reference
swapped for another item's; a Chinese reference with the passage's next character glued on)
are dropped. ``--table-only`` recomputes from the JSONL without a model. A person reads the
verdicts and judges each drop: choose the threshold on one knowledge base, check it on the
other. The results are in docs/evaluation.md ("Generating a test suite").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def run(kb_name: str, model: str, n: int, seed: int, out: Path) -> Path:
    from assistant.knowledge import KnowledgeBase
    from assistant.service import get_backend
    from assistant.settings import load_settings
    from evaluation.generate.consistency import AnswerCheck
    from evaluation.generate.engine import GenerateConfig, generate_items

    settings = load_settings({"threads": 2})
    backend = get_backend(model, settings)
    config = GenerateConfig(n=n, seed=seed, batch_size=8, answer_check=AnswerCheck(min_agreement=0.0))
    started = time.perf_counter()
    with KnowledgeBase.open(kb_name, settings) as kb:
        report = generate_items(kb, backend, config)
    rows = [
        {
            "question": c.question,
            "reference": c.answer,
            "second": second,
            "why": why,
            "lang": c.lang,
            "passages": list(c.passages),
        }
        for c, second, why in report.second_pass
    ]
    path = out / f"{kb_name}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    summary = {
        "kb": kb_name,
        "model": model,
        "seconds": round(time.perf_counter() - started, 1),
        "generation_calls": report.calls,
        "answer_calls": report.answer_calls,
        "rejected": dict(report.rejected),
    }
    (out / f"{kb_name}.summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    print(json.dumps(summary, ensure_ascii=False))
    return path


def _stray_variant(reference: str, passages: list[str]) -> str | None:
    """The reference with the passage's next character glued on ("2400 元" -> "2400 元升"), when
    the reference is a span of a Chinese passage that goes on with another CJK character."""
    import re

    flat_ref = "".join(reference.split()).rstrip("。")
    for passage in passages:
        flat = "".join(passage.split())
        at = flat.find(flat_ref)
        if flat_ref and at >= 0 and at + len(flat_ref) < len(flat):
            following = flat[at + len(flat_ref)]
            if re.match(r"[\u4e00-\u9fff]", following):
                return reference.rstrip("。") + following
    return None


def table(path: Path) -> None:
    """Kept and dropped per threshold, recomputed from the recorded second answers, for the items
    as generated and for two kinds of known-bad variants built from them (no model call): each
    item's reference swapped for another item's (same language), and a Chinese reference with
    the passage's next character glued on (the "2400 元升" defect)."""
    from evaluation.generate.consistency import AnswerCheck, verdict

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"\n{path.stem}: {len(rows)} items answered twice")
    for row in rows:
        why = verdict(_candidate(row, row["reference"]), row["second"], AnswerCheck())
        print(f"  {why or 'kept':<15} {row['question']} | {row['reference']} | second: {row['second'][:60]}")
    swaps = [
        (row, other["reference"])
        for k, row in enumerate(rows)
        for other in rows[k + 1 :] + rows[:k]
        if other["lang"] == row["lang"] and other["reference"] != row["reference"]
    ]
    strays = [
        (row, v)
        for row in rows
        if row["lang"] == "zh" and (v := _stray_variant(row["reference"], row["passages"]))
    ]
    print(f"| min_agreement | as generated: kept / {len(rows)} | swapped references: dropped / {len(swaps)} "
          f"| stray character: dropped / {len(strays)} |")  # fmt: skip
    print("|---|---|---|---|")
    for threshold in THRESHOLDS:
        limits = AnswerCheck(min_agreement=threshold)
        kept = sum(verdict(_candidate(r, r["reference"]), r["second"], limits) is None for r in rows)
        swapped = sum(verdict(_candidate(r, ref), r["second"], limits) is not None for r, ref in swaps)
        stray = sum(verdict(_candidate(r, ref), r["second"], limits) is not None for r, ref in strays)
        print(f"| {threshold:.1f} | {kept} | {swapped} | {stray} |")


def _candidate(row: dict[str, object], reference: str) -> object:
    from evaluation.generate.consistency import Candidate

    return Candidate(str(row["question"]), reference, tuple(row["passages"]), str(row["lang"]))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb", action="append", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "generate_check")
    parser.add_argument("--table-only", action="store_true", help="only recompute the tables from --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for kb_name in args.kb:
        path = args.out / f"{kb_name}.jsonl"
        if not args.table_only:
            path = run(kb_name, args.model, args.n, args.seed, args.out)
        table(path)


if __name__ == "__main__":
    main()
