"""From item records to a run's numbers: means with bootstrap CIs, thresholds, breakdowns,
paired comparisons and cost. Pure functions of the records, so ``ladder runs show`` and a
report re-rendered later give exactly what the run printed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from evaluation.metrics.base import Metric
from evaluation.metrics.cost import PriceTable, cost_summary
from evaluation.metrics.mcq import breakdown
from evaluation.results import (
    Comparison,
    GroupResult,
    ItemRecord,
    MetricResult,
    RunResult,
    StrategyResult,
)
from evaluation.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap


def values_of(records: Sequence[ItemRecord], label: str) -> list[float | None]:
    return [r.scores[label].value if label in r.scores else None for r in records]


def metric_result(
    label: str, records: Sequence[ItemRecord], higher_is_better: bool, threshold: float | None
) -> MetricResult:
    ci = bootstrap_ci(values_of(records, label))
    reasons: dict[str, int] = {}
    for record in records:
        score = record.scores.get(label)
        if score is None or score.value is None or math.isnan(score.value):
            reason = score.reason if score is not None else "not scored"
            reasons[reason] = reasons.get(reason, 0) + 1
    passed = None
    if threshold is not None and ci.mean is not None:
        passed = ci.mean >= threshold if higher_is_better else ci.mean <= threshold
    return MetricResult(label, ci.mean, ci.low, ci.high, ci.n, ci.n_na, reasons, higher_is_better, threshold,
                        passed)  # fmt: skip


def summarize_strategy(
    result: StrategyResult,
    records: Sequence[ItemRecord],
    metrics: Sequence[Metric],
    thresholds: Mapping[str, float],
    model: str,
    prices: PriceTable,
    latency: tuple[Sequence[float], str] | None = None,
    judge: str | None = None,
) -> None:
    """Fill ``result``'s metrics, breakdown and cost from its records.

    ``latency``: the single-request times the runner measured and how (``cost_summary``).
    ``judge``: the run's judge, whose share of the cost is summed apart.
    """
    for metric in metrics:
        result.metrics[metric.label] = metric_result(
            metric.label, records, metric.higher_is_better, thresholds.get(metric.label)
        )
    main = "accuracy" if "accuracy" in result.metrics else None
    if main and any(r.subject for r in records):
        values = values_of(records, main)
        result.breakdown_metric = main
        for by in ("subject", "category"):
            groups = breakdown(values, [getattr(r, by) for r in records])
            result.breakdown[by] = {g: GroupResult(g, s.mean, s.n, s.n_na) for g, s in groups.items()}
    if latency is None:
        result.cost = cost_summary(records, model, prices, judge=judge)
    else:
        result.cost = cost_summary(records, model, prices, latency[0], latency[1], judge=judge)


def is_binary(values: Sequence[float | None]) -> bool:
    return all(v in (0.0, 1.0) for v in values if v is not None and not math.isnan(v))


def compare(
    a: str,
    b: str,
    a_records: Sequence[ItemRecord],
    b_records: Sequence[ItemRecord],
    labels: Sequence[str],
    confidence: float = 0.95,
) -> list[Comparison]:
    """``a`` minus ``b`` per metric, paired on item ids (items only one side has are left out)."""
    b_by_id = {r.item_id: r for r in b_records}
    pairs = [(r, b_by_id[r.item_id]) for r in a_records if r.item_id in b_by_id]
    out = []
    for label in labels:
        xs = values_of([p[0] for p in pairs], label)
        ys = values_of([p[1] for p in pairs], label)
        diff = paired_bootstrap(xs, ys, confidence=confidence)
        if is_binary(xs) and is_binary(ys):
            test = mcnemar_exact(xs, ys)
            out.append(Comparison(label, a, b, diff.diff, diff.low, diff.high, test.p_value, test.n,
                                  "McNemar exact"))  # fmt: skip
        else:
            out.append(Comparison(label, a, b, diff.diff, diff.low, diff.high, diff.p_value, diff.n,
                                  "paired bootstrap"))  # fmt: skip
    return out


def threshold_failures(run: RunResult) -> list[str]:
    """Missed thresholds in words; a metric with nothing scored misses its threshold too."""
    failures = []
    for strategy in run.strategies:
        for label, result in strategy.metrics.items():
            if result.threshold is None:
                continue
            if result.mean is None and all(r.startswith("not applicable") for r in result.na_reasons):
                continue  # e.g. hit@3 for a strategy that does not retrieve
            if result.mean is None:
                failures.append(
                    f"{strategy.strategy}: {label} has no scored items (threshold {result.threshold:g})"
                )
            elif not result.passed:
                relation = "below" if result.higher_is_better else "above"
                failures.append(
                    f"{strategy.strategy}: {label} = {result.mean:.3f} is {relation} the threshold "
                    f"{result.threshold:g}"
                )
    return failures
