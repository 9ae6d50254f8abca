"""What every report says, in the same words: number formats, the main metric, the worst
items, and the plain-words reading of a comparison. The renderers only lay these out."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

from assistant.errors import ConfigError
from evaluation.metrics.cost import LATENCY_EVERY_ITEM, LATENCY_NOT_MEASURED, LATENCY_SAMPLE
from evaluation.results import (
    COMPLETE,
    FAILED,
    Comparison,
    CostResult,
    ItemRecord,
    MetricResult,
    RunResult,
)

NO_JUDGE = "no judge (deterministic metrics only)"
CONTEXT_CHARS = 300  # retrieved contexts are clipped to this in the drill-down
MAX_CONTEXTS = 5  # and at most this many are shown per item
SIGNIFICANCE = 0.05


# ---- numbers ------------------------------------------------------------------------------
def is_na(value: float | None) -> bool:
    return value is None or math.isnan(value)


def num(value: float | None) -> str:
    """Every metric value, CI bound and diff: 3 decimals, "n/a" when missing."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def ci(low: float | None, high: float | None) -> str:
    return "" if is_na(low) or is_na(high) else f"[{num(low)}, {num(high)}]"


def p_text(p_value: float | None) -> str:
    if is_na(p_value):
        return "p n/a"
    assert p_value is not None
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"


def seconds(value: float | None) -> str:
    if is_na(value):
        return "n/a"
    assert value is not None
    if value < 60:
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


# ---- compute and latency -------------------------------------------------------------------
COST_HEADER = ["compute / q (batched)", "single-request p50", "single-request p95"]
COMPUTE_NOTE = (
    "Compute per question (batched): each batch's wall time divided by the questions it held; "
    "the price is charged on it. It is not what one user waits."
)


def latency_how(cost: CostResult) -> str:
    """How the single-request latency was measured, in words (the reports' note per strategy)."""
    n = cost.latency_n
    if cost.latency_source == LATENCY_SAMPLE:
        slowest = " (its p95 is the slowest of them)" if 0 < n < 20 else ""
        return (
            f"single-request latency measured on {n} request{'s' if n != 1 else ''} answered one at a "
            f"time after the batched run{slowest}"
        )
    if cost.latency_source == LATENCY_EVERY_ITEM:
        return f"single-request latency measured on all {n} items, each answered on its own (batches of one)"
    if cost.latency_source == LATENCY_NOT_MEASURED or (n == 0 and cost.latency_source):
        return "single-request latency not measured (latency_sample is 0)"
    if not cost.latency_source:
        return "latency from an older run: the backend's per-answer time, a batch's wall time when batched"
    return (
        f"single-request latency from the backend's per-answer time on {n} answers "
        "(it answers and times each request on its own)"
    )


def latency_cells(cost: CostResult) -> list[str]:
    """compute / q, single-request p50, single-request p95 (with the n it was measured on)."""
    p95 = seconds(cost.latency_p95_s)
    if cost.latency_n and not is_na(cost.latency_p95_s):
        p95 += f" (n={cost.latency_n})"
    return [seconds(cost.compute_s_mean), seconds(cost.latency_p50_s), p95]


def money(value: float | None, currency: str) -> str:
    if is_na(value):
        return "n/a"
    assert value is not None
    # Small local costs would all read 0.00 with cents; 4 significant digits keep them apart.
    return f"{value:,.2f} {currency}" if value >= 100 else f"{value:.4g} {currency}"


def na_reasons(reasons: dict[str, int]) -> str:
    """Most frequent first: ``3 × judge parse failure; 1 × missing reference``."""
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{count} × {reason or 'no reason given'}" for reason, count in ordered)


def clip(text: str, limit: int = CONTEXT_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit} chars)"


# ---- thresholds ---------------------------------------------------------------------------
def bound_text(metric: MetricResult) -> str:
    """The threshold as a condition: "≥ 0.700" (or "≤" for lower-is-better metrics)."""
    return f"{'≥' if metric.higher_is_better else '≤'} {num(metric.threshold)}"


def threshold_state(metric: MetricResult) -> str | None:
    """None (no threshold), "pass" or "fail"; a threshold with nothing scored fails."""
    if metric.threshold is None:
        return None
    return "pass" if metric.passed else "fail"


def threshold_miss(metric: MetricResult) -> str:
    """Why a threshold failed, with the measured value, its CI and the threshold."""
    if is_na(metric.mean):
        reasons = f" (n/a: {na_reasons(metric.na_reasons)})" if metric.na_reasons else ""
        return f"{metric.label}: no item was scored{reasons}; the threshold is {bound_text(metric)}"
    side = "below" if metric.higher_is_better else "above"
    interval = ci(metric.low, metric.high)
    interval = f" (95% CI {interval}, n={metric.n})" if interval else f" (n={metric.n})"
    return f"{metric.label} {num(metric.mean)}{interval} is {side} the threshold {bound_text(metric)}"


# ---- header facts -------------------------------------------------------------------------
def status_text(run: RunResult) -> str:
    if run.status == FAILED:
        return "failed"
    if run.status != COMPLETE:
        return f"{run.status} (not finished)"
    if run.failures:
        missed = len(run.failures)
        return f"complete, {missed} threshold{'s' if missed != 1 else ''} missed"
    return "complete, all thresholds met" if any_threshold(run) else "complete"


def any_threshold(run: RunResult) -> bool:
    return any(m.threshold is not None for s in run.strategies for m in s.metrics.values())


def cached_items(run: RunResult) -> int:
    costs = [s.cost for s in run.strategies if s.cost is not None]
    if costs:
        return sum(c.cached_items for c in costs)
    return sum(1 for r in run.records if r.cached)


def header_rows(run: RunResult) -> list[tuple[str, str]]:
    """(label, value) pairs for the report's header, plain text."""
    rows = [
        ("Suite", f"{run.suite} ({run.suite_path})" if run.suite_path else run.suite),
        *([("Suite review", f"not reviewed: {run.suite_review}")] if run.suite_review else []),
        ("Run", run.run_id),
        ("Status", status_text(run)),
        ("Model", run.model or "n/a"),
        ("Judge", run.judge or NO_JUDGE),
        ("Kind", run.kind),
    ]
    if run.kind == "mcq":
        rows.append(("MCQ mode", run.mode))
    rows += [
        ("Started", run.created),
        ("Finished", run.finished or "not finished"),
        ("Wall time", seconds(run.wall_s)),
        ("Model calls", model_calls_text(run)),
    ]
    if run.judge and run.judge_calls is not None:
        rows.append(("Judge tokens", judge_tokens_text(run)))
    if run.judge and run.judge_agreement:
        rows.append(("Judge agreement", agreement_summary(run)))
    return rows


# ---- how far the judge agrees with people (``ladder judge check``) ----------------------------
def agreement_text(run: RunResult, label: str) -> str | None:
    """The judge's agreement with people on ``label`` as the run recorded it; None when the
    metric is not judged in this run."""
    from evaluation.calibration.gate import DEFAULT_MIN_AGREEMENT

    if not run.judge or label not in run.judge_agreement:
        return None
    stored = run.judge_agreement[label]
    if stored is None or stored.get("concordance") is None:
        return f"judge not checked (ladder judge check --judge {run.judge})"
    value = float(stored["concordance"])
    low, high = stored.get("low"), stored.get("high")
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    text = f"judge agreement {value:.2f}{interval}, n={stored.get('n', 0)}"
    if value < DEFAULT_MIN_AGREEMENT:
        text += f": below {DEFAULT_MIN_AGREEMENT:.2f}, do not trust these scores"
    return text


def agreement_warns(run: RunResult, label: str) -> bool:
    """Whether ``label``'s judged scores deserve a warning: its judge was never checked, or agrees
    less than the bar. Read from the recorded numbers, never from the words."""
    from evaluation.calibration.gate import DEFAULT_MIN_AGREEMENT

    if not run.judge or label not in run.judge_agreement:
        return False
    stored = run.judge_agreement[label]
    value = None if stored is None else stored.get("concordance")
    return value is None or float(value) < DEFAULT_MIN_AGREEMENT


def agreement_summary(run: RunResult) -> str:
    return "; ".join(f"{label}: {agreement_text(run, label)}" for label in run.judge_agreement)


def metric_heading(run: RunResult, label: str, main: str | None) -> str:
    """A metric's column title: the main one marked, a judged one with its judge's agreement."""
    heading = f"{label} (main)" if label == main else label
    stored = run.judge_agreement.get(label) if run.judge else None
    if label in run.judge_agreement and run.judge:
        value = None if stored is None else stored.get("concordance")
        heading += " · judge not checked" if value is None else f" · judge agrees {float(value):.2f}"
    return heading


def model_calls_text(run: RunResult) -> str:
    """The answering model's calls and, with a judge, the judge's apart."""
    cached = cached_items(run)
    if not run.judge:
        return f"{run.model_calls:,} made in this run; {cached:,} items from the cache"
    if run.judge_calls is None:
        return (
            f"{run.model_calls:,} answering made in this run (judge calls not counted: an older run); "
            f"{cached:,} items from the cache"
        )
    return (
        f"{run.model_calls:,} answering + {run.judge_calls:,} judge made in this run; "
        f"{cached:,} items and {run.judge_cached:,} judgements from the cache"
    )


def judge_tokens_text(run: RunResult) -> str:
    return f"{run.judge_prompt_tokens:,} prompt + {run.judge_completion_tokens:,} completion in this run"


# ---- the judge's share of the cost ----------------------------------------------------------
JUDGE_COST_HEADER = ["strategy", "judge", "judge calls/q", "prompt tok/q", "completion tok/q", "judge time/q",
                     "judge cost / 1,000 q", "price source"]  # fmt: skip
JUDGE_COST_NUMERIC = {2, 3, 4, 5, 6}  # right-aligned columns of JUDGE_COST_HEADER
JUDGE_COST_NOTE = (
    "The judge's share: what scoring the answers cost, apart from the answering cost above "
    "(a decision's cost limit reads that one only). Per question over the strategy's items; a "
    "judgement from the cache costs nothing, so a re-run from the cache shows 0."
)


def judge_cost_rows(run: RunResult) -> list[list[str]]:
    """One row of plain text per strategy whose cost has a judge's share (JUDGE_COST_HEADER)."""
    rows = []
    for s in run.strategies:
        if (cost := s.cost) is None or not cost.judge_model:
            continue
        rows.append(
            [
                s.strategy,
                cost.judge_model,
                f"{cost.judge_calls_mean:.2f}",
                f"{cost.judge_prompt_tokens_mean:,.1f}",
                f"{cost.judge_completion_tokens_mean:,.1f}",
                seconds(cost.judge_compute_s_mean),
                money(cost.judge_cost_per_1k_questions, cost.currency),
                cost.judge_price_source or "n/a",
            ]
        )
    return rows


def metric_labels(run: RunResult) -> list[str]:
    """Every metric label in the run, in first-seen order."""
    seen: dict[str, None] = {}
    for strategy in run.strategies:
        seen.update(dict.fromkeys(strategy.metrics))
    return list(seen)


def main_metric(run: RunResult) -> str | None:
    """The threshold's first metric, else accuracy for MCQ, else the first metric."""
    labels = metric_labels(run)
    if run.thresholds:
        return next(iter(run.thresholds))
    if run.kind == "mcq" and ("accuracy" in labels or not labels):
        return "accuracy"
    if labels:
        return labels[0]
    for record in run.records:
        return next(iter(record.scores), None)
    return None


def higher_is_better(run: RunResult, label: str) -> bool:
    for strategy in run.strategies:
        if label in strategy.metrics:
            return strategy.metrics[label].higher_is_better
    from evaluation.metrics.base import metric_class

    try:
        return bool(metric_class(label).higher_is_better)
    except ConfigError:  # a label such as "hit@3" names no registered class: assume the usual
        return True


# ---- breakdown ----------------------------------------------------------------------------
def breakdown_groups(run: RunResult, by: str) -> list[str]:
    groups: dict[str, None] = {}
    for s in run.strategies:
        groups.update(dict.fromkeys(s.breakdown.get(by, {})))
    return sorted(groups)


def breakdown_kinds(run: RunResult) -> list[str]:
    kinds: dict[str, None] = {}
    for s in run.strategies:
        kinds.update(dict.fromkeys(by for by, groups in s.breakdown.items() if groups))
    return list(kinds)


def breakdown_metric(run: RunResult) -> str:
    return next((s.breakdown_metric for s in run.strategies if s.breakdown_metric), None) or "score"


# ---- comparisons --------------------------------------------------------------------------
def comparison_reading(comparison: Comparison, higher_better: bool = True) -> str:
    """E.g. "rag is better than prompt on accuracy by 0.120 (95% CI 0.050..0.190, p=0.003)"."""
    c = comparison
    if is_na(c.diff):
        return f"{c.a} and {c.b} cannot be compared on {c.metric} (no paired items scored)"
    assert c.diff is not None
    if not is_na(c.p_value):
        assert c.p_value is not None
        significant = c.p_value < SIGNIFICANCE
    elif c.low is not None and c.high is not None and not (is_na(c.low) or is_na(c.high)):
        significant = c.low > 0 or c.high < 0  # no p-value: the interval decides
    else:
        significant = False
    interval = f"95% CI {num(c.low)}..{num(c.high)}" if not (is_na(c.low) or is_na(c.high)) else "no CI"
    if not significant or c.diff == 0:
        return (
            f"no significant difference between {c.a} and {c.b} on {c.metric} "
            f"(diff {num(c.diff)}, {interval}, {p_text(c.p_value)})"
        )
    a_better = (c.diff > 0) == higher_better
    winner, loser = (c.a, c.b) if a_better else (c.b, c.a)
    # Said from the winner's side, so the interval is of (winner - loser) and reads positive.
    low, high = (c.low, c.high) if winner == c.a else (_neg(c.high), _neg(c.low))
    interval = f"95% CI {num(low)}..{num(high)}" if not (is_na(low) or is_na(high)) else "no CI"
    diff = abs(c.diff)
    return f"{winner} is better than {loser} on {c.metric} by {num(diff)} ({interval}, {p_text(c.p_value)})"


def _neg(value: float | None) -> float | None:
    return None if value is None else -value


# ---- the drill-down -----------------------------------------------------------------------
@dataclass
class WorstItem:
    record: ItemRecord
    value: float | None  # the main metric; None is n/a
    reason: str  # why n/a


def records_by_strategy(records: Iterable[ItemRecord]) -> dict[str, list[ItemRecord]]:
    grouped: dict[str, list[ItemRecord]] = {}
    for record in records:
        grouped.setdefault(record.strategy, []).append(record)
    return grouped


def worst_items(
    records: list[ItemRecord], metric: str | None, limit: int, higher_better: bool
) -> list[WorstItem]:
    """The ``limit`` worst records on ``metric``, worst first.

    n/a items come first (they are often the most telling: no answer, a parse failure), but
    take at most half the slots while scored items exist, so the worst scored items show too.
    """
    if limit <= 0 or not records:
        return []
    scored: list[tuple[float, int, WorstItem]] = []
    missing: list[WorstItem] = []
    for index, record in enumerate(records):
        score = record.scores.get(metric) if metric else None
        if score is None:
            missing.append(WorstItem(record, None, "not scored"))
        elif is_na(score.value):
            missing.append(WorstItem(record, None, score.reason or "no reason given"))
        else:
            assert score.value is not None
            key = score.value if higher_better else -score.value
            scored.append((key, index, WorstItem(record, score.value, "")))
    n_missing = min(len(missing), max(limit - len(scored), limit // 2 or 1))
    worst_scored = heapq.nsmallest(limit - n_missing, scored, key=lambda t: (t[0], t[1]))
    return missing[:n_missing] + [w for _, _, w in worst_scored]


def score_text(value: float | None, reason: str) -> str:
    return f"n/a ({reason})" if is_na(value) else num(value)
