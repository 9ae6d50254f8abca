"""The judged scores issue 16 found wrong, judged again: ragas' English prompts and free
replies (before) against prompts in the item's language and JSON-constrained replies (after).

    .venv/bin/python benchmarks/judge_examples.py [--judge qwen2.5-coder-0.5b]
        [--prompts ragas localized] [--constrain off on] [--home ~/.ladder]

The items (written here; the contexts state each answer):
- the gift-card item in English: "No, digital gift cards cannot be refunded." with the first
  context saying exactly that (faithfulness and context precision; issue 16 found 0.000 and
  0.000);
- a Chinese item answered "5天" (faithfulness and context precision; issue 16: 0.000);
- three correct Chinese answers (answer relevancy; issue 16: 0.118 / 0.158 / 0.000).

Every combination of ``--prompts`` and ``--constrain`` judges every item with the same judge
(one model load). A row gives each score (n/a with the failure when the judge's reply could
not be used), the judge parse failures, the judge calls and the seconds of judging. Answer
relevancy embeds with the settings' embedding model (the packaged English-only MiniLM unless
``embedding_model`` is set): its Chinese scores carry the warning that says so.
Writes benchmarks/out/judge_examples.md and .json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

GIFT_CARD = {
    "id": "en-gift-card",
    "user_input": "Can I get a refund for a digital gift card?",
    "retrieved_contexts": [
        "Digital gift cards cannot be refunded or exchanged for cash once they have been delivered.",
        "Physical gift cards can be returned within 30 days if they have not been activated.",
    ],
    "response": "No, digital gift cards cannot be refunded.",
    "reference": "No. Digital gift cards cannot be refunded once delivered.",
}
FIVE_DAYS = {
    "id": "zh-5-days",
    "user_input": "员工每年可以休几天带薪病假？",
    "retrieved_contexts": [
        "员工每年享有5天带薪病假，病假需提供医院开具的证明。",
        "员工入职满一年后享有10天带薪年假，未休完的年假可顺延至次年3月31日。",
    ],
    "response": "5天",
    "reference": "每年5天带薪病假。",
}
RELEVANT = [
    {
        "id": "zh-return",
        "user_input": "网购的商品签收后多少天内可以无理由退货？",
        "response": "自签收之日起7天内可以申请无理由退货，商品需保持完好。",
    },
    {
        "id": "zh-points",
        "user_input": "会员积分可以抵扣现金吗？",
        "response": "可以，每100积分抵扣1元，最多抵扣订单金额的10%。",
    },
    {
        "id": "zh-leave",
        "user_input": "没休完的年假可以顺延到下一年吗？",
        "response": "可以，未休完的年假可以顺延到次年3月31日前使用。",
    },
]
# (metric name, items): each metric judges the items that issue 16 measured it on.
CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("faithfulness", [GIFT_CARD, FIVE_DAYS]),
    ("context_precision", [GIFT_CARD, FIVE_DAYS]),
    ("answer_relevancy", RELEVANT),
]


def judge_all(judge: Any) -> tuple[dict[str, Any], int]:
    """{metric/item: score text} and the number of judge parse failures."""
    from evaluation.metrics import build_metric
    from evaluation.metrics.judged import JudgedMetric

    scores: dict[str, Any] = {}
    failures = 0
    for name, items in CASES:
        metric = build_metric(name)
        assert isinstance(metric, JudgedMetric)
        for item, score in zip(items, metric.score_many(items, judge), strict=True):
            failed = bool(score.detail.get("judge_failure"))
            failures += failed
            value = "n/a" if score.value is None else f"{score.value:.3f}"
            scores[f"{name}/{item['id']}"] = {
                "value": score.value,
                "text": value + (" (parse failure)" if failed else ""),
                "reason": score.reason,
                "warning": score.detail.get("warning"),
            }
    return scores, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", default="qwen2.5-coder-0.5b")
    parser.add_argument(
        "--prompts", nargs="+", choices=["ragas", "localized"], default=["ragas", "localized"]
    )
    parser.add_argument("--constrain", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--home", default=str(Path.home() / ".ladder"), help="LADDER_HOME with the pack")
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()

    import assistant  # noqa: F401  (the offline environment first)
    from assistant.settings import load_settings
    from evaluation.metrics.judge import Judge

    settings = load_settings({"home": args.home})
    judge = Judge.from_settings(args.judge, settings)
    rows = []
    for prompts, constrain in itertools.product(args.prompts, args.constrain):
        judge.localized_prompts = prompts == "localized"
        judge.constrained = constrain == "on"
        calls_before = judge.usage.calls
        start = time.perf_counter()
        scores, failures = judge_all(judge)
        rows.append(
            {
                "prompts": prompts,
                "constrained": constrain,
                "scores": scores,
                "parse_failures": failures,
                "judge_calls": judge.usage.calls - calls_before,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    write(rows, Path(args.out), args.judge, settings)


def write(rows: list[dict[str, Any]], out: Path, judge: str, settings: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "judge_examples.json").write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    keys = list(rows[0]["scores"])
    lines = [
        f"Judge {judge}, {settings.threads} threads; embedding model: "
        f"{settings.embedding_model or 'packaged all-MiniLM-L6-v2'}",
        "",
        "| prompts | constrained | " + " | ".join(keys) + " | parse failures | judge calls | s |",
        "|" + "---|" * (len(keys) + 5),
    ]
    for row in rows:
        cells = [row["scores"][k]["text"] for k in keys]
        lines.append(
            f"| {row['prompts']} | {row['constrained']} | "
            + " | ".join(cells)
            + f" | {row['parse_failures']} | {row['judge_calls']} | {row['seconds']} |"
        )
    warnings = {w for row in rows for s in row["scores"].values() if (w := s.get("warning"))}
    lines += ["", *(f"Warning on the Chinese answer_relevancy items: {w}" for w in sorted(warnings))]
    (out / "judge_examples.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
