"""The stop rule and its arithmetic: a rung's estimates at the decision's confidence, whether
it meets every target and limit, paired comparisons, and which rung to recommend.

- A rung **meets** when, for every target, the CI bound on the target's side clears the
  threshold (the lower bound for ``>=``, the upper bound for ``<=``), and its cost per 1,000
  questions and p95 latency are within the limits.
- The ladder stops at the first rung that meets. Before recommending it, it looks back at
  each cheaper rung whose *mean* already clears every target and limit (a near miss): if
  the meeting rung is not significantly better on any target metric (paired test at
  ``alpha = 1 - confidence``), the two cannot be separated on this data. That is a tie;
  Ladder says so, and recommends the cheaper one.
- With no rung meeting, the closest rung is the one with the best mean on the targets (most
  targets cleared on the mean, then the smallest mean shortfall). A cheaper rung is named
  as its equal only when nothing separates the two: no target *and no other reported
  metric* differs significantly (the same paired test). A cheaper rung that ties on the
  target but loses on exact match, say, is not "as close".
"""

from __future__ import annotations

from collections.abc import Sequence

from evaluation.aggregate import compare, values_of
from evaluation.decide.config import DecisionConfig, Target
from evaluation.decide.result import EVALUATED, Estimate, Paired, Reason, RungResult, SuiteScores
from evaluation.plan import NOT_APPLICABLE
from evaluation.results import Comparison, ItemRecord, RunResult
from evaluation.stats import bootstrap_ci


def estimate(
    records: Sequence[ItemRecord], metric: str, confidence: float, target: Target | None
) -> Estimate:
    ci = bootstrap_ci(values_of(records, metric), confidence=confidence)
    est = Estimate(metric, ci.mean, ci.low, ci.high, ci.n, ci.n_na)
    reasons = [
        r.scores[metric].reason for r in records if metric in r.scores and r.scores[metric].value is None
    ]
    est.not_applicable = ci.n == 0 and bool(reasons) and all(r.startswith(NOT_APPLICABLE) for r in reasons)
    if target is not None:
        est.target, est.op, est.threshold = str(target), target.op or ">=", target.value
        est.mean_passes = target.holds(ci.mean)
        bound = ci.high if target.op == "<=" else ci.low
        est.bound_passes = target.holds(bound)
    return est


def suite_scores(
    run: RunResult, label: str, metrics: Sequence[str], targets: Sequence[Target], confidence: float
) -> SuiteScores:
    """One lane of a run as the decision sees it: estimates at ``confidence``, cost, latency."""
    records = run.records_for(label)
    by_metric = {t.metric: t for t in targets}
    result = next(s for s in run.strategies if s.strategy == label)
    scores = SuiteScores(run.suite, run.run_id, items=len(records), model_calls=run.model_calls)
    for metric in metrics:
        scores.metrics[metric] = estimate(records, metric, confidence, by_metric.get(metric))
    cost = result.cost
    if cost is not None:
        scores.cost_per_1k = cost.cost_per_1k_questions
        scores.currency, scores.price_source = cost.currency, cost.price_source
        scores.p95_latency_s = cost.latency_p95_s
        scores.tokens_per_question = cost.prompt_tokens_mean + cost.completion_tokens_mean
        scores.calls_per_question = cost.model_calls_mean
    return scores


def target_misses(scores: SuiteScores, targets: Sequence[Target], use_bound: bool = True) -> list[Reason]:
    misses, skipped = [], []
    for target in targets:
        est = scores.metrics.get(target.metric)
        if est is None or est.not_applicable:
            # Not measured for this rung, as the evaluation runner's thresholds treat it: retrieval
            # metrics for a rung that does not retrieve, the unparseable rate in logprob mode.
            skipped.append(target.metric)
            continue
        if est.mean is None:
            misses.append(Reason("no_scores", {"metric": target.metric}))
            continue
        params = {
            "metric": target.metric,
            "op": est.op,
            "threshold": target.value,
            "mean": est.mean,
            "low": est.low,
            "high": est.high,
        }
        if not est.mean_passes:
            misses.append(Reason("mean_misses", params))
        elif use_bound and not est.bound_passes:
            misses.append(Reason("bound_misses", params))
    if skipped and len(skipped) == len(targets):
        misses.append(Reason("nothing_measured", {"metrics": skipped}))
    return misses


def limit_misses(scores: SuiteScores, config: DecisionConfig) -> list[Reason]:
    misses = []
    if config.max_cost_per_1k is not None:
        if scores.cost_per_1k is None:
            misses.append(Reason("cost_unknown", {"source": scores.price_source}))
        elif scores.cost_per_1k > config.max_cost_per_1k:
            misses.append(
                Reason(
                    "cost_over",
                    {
                        "cost": scores.cost_per_1k,
                        "limit": config.max_cost_per_1k,
                        "currency": scores.currency,
                    },
                )
            )
    if config.max_p95_latency_s is not None and (scores.p95_latency_s or 0.0) > config.max_p95_latency_s:
        misses.append(
            Reason("latency_over", {"p95": scores.p95_latency_s, "limit": config.max_p95_latency_s})
        )
    return misses


def judge_rung(rung: RungResult, config: DecisionConfig) -> None:
    """Set ``meets`` and ``misses`` from the rung's dev scores."""
    assert rung.dev is not None
    rung.misses = target_misses(rung.dev, config.targets) + limit_misses(rung.dev, config)
    rung.meets = not rung.misses


def near_miss(rung: RungResult, config: DecisionConfig) -> bool:
    """The mean clears every target and the limits hold; only the CI keeps it from meeting (a rung
    that lost general ability is no near miss: its dev score is not what failed)."""
    assert rung.dev is not None
    if any(m.code == "forgetting" for m in rung.misses):
        return False
    return not target_misses(rung.dev, config.targets, use_bound=False) and not limit_misses(rung.dev, config)


def paired(
    a: str,
    b: str,
    a_records: Sequence[ItemRecord],
    b_records: Sequence[ItemRecord],
    targets: Sequence[Target],
    config: DecisionConfig,
) -> list[Paired]:
    out = []
    for c in compare(a, b, a_records, b_records, [t.metric for t in targets], confidence=config.confidence):
        target = next(t for t in targets if t.metric == c.metric)
        significant = c.p_value is not None and c.p_value < config.alpha
        better = c.diff is not None and (c.diff < 0 if target.op == "<=" else c.diff > 0)
        out.append(
            Paired(
                a,
                b,
                c.metric,
                c.diff,
                c.low,
                c.high,
                c.p_value,
                c.n,
                c.test,
                significant,
                significant and better,
            )
        )
    return out


def all_pairs(
    rungs: Sequence[RungResult], records: dict[str, list[ItemRecord]], config: DecisionConfig
) -> list[Paired]:
    """Every evaluated rung against every cheaper evaluated rung, on the target metrics."""
    done = [r for r in rungs if r.state == EVALUATED and r.label in records]
    out: list[Paired] = []
    for i, later in enumerate(done):
        for earlier in done[:i]:
            out += paired(
                later.label,
                earlier.label,
                records[later.label],
                records[earlier.label],
                config.targets,
                config,
            )
    return out


def find(comparisons: Sequence[Paired], a: str, b: str) -> list[Paired]:
    return [c for c in comparisons if c.a == a and c.b == b]


def choose(
    rungs: Sequence[RungResult],
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> tuple[str | None, RungResult | None, list[Reason]]:
    """``(winner that met or None, recommended rung, reasons)``; a tie recommends the cheaper rung.
    ``records`` (per rung) let the closest rule test the metrics that are not targets too."""
    evaluated = [r for r in rungs if r.state == EVALUATED]
    winner = next((r for r in evaluated if r.meets), None)
    if winner is None:
        pair = closest_pair(evaluated, comparisons, config, records)
        reasons = [Reason("none_meets", {"rungs": [r.label for r in evaluated]})]
        if pair is not None:
            closest, best = pair
            if closest is best:
                reasons.append(Reason("closest", {"rung": best.label}))
            else:
                reasons.append(Reason("closest_equal", {"rung": closest.label, "best": best.label}))
        return None, None, reasons
    reasons = [Reason("first_meets", {"rung": winner.label})]
    for earlier in evaluated[: evaluated.index(winner)]:
        if not near_miss(earlier, config):
            continue
        pairs = find(comparisons, winner.label, earlier.label)
        if pairs and not any(p.a_better for p in pairs):
            worst = max(pairs, key=lambda p: p.p_value if p.p_value is not None else 1.0)
            reasons.append(
                Reason(
                    "tie",
                    {
                        "winner": winner.label,
                        "cheaper": earlier.label,
                        "metric": worst.metric,
                        "diff": worst.diff,
                        "p": worst.p_value,
                        "n": worst.n,
                        "alpha": config.alpha,
                    },
                )
            )
            return winner.label, earlier, reasons
    for earlier in evaluated[: evaluated.index(winner)]:
        better = [p for p in find(comparisons, winner.label, earlier.label) if p.a_better]
        if better:
            p = better[0]
            reasons.append(
                Reason(
                    "better_than",
                    {
                        "rung": winner.label,
                        "other": earlier.label,
                        "metric": p.metric,
                        "diff": p.diff,
                        "p": p.p_value,
                    },
                )
            )
    return winner.label, winner, reasons


def _target_key(rung: RungResult, targets: Sequence[Target]) -> tuple[int, float]:
    """How close a rung's means come to the targets: targets cleared on the mean, then the
    mean signed margin (a shortfall counts negative) over the targets it is scored on (a
    retrieval target does not apply to a rung that does not retrieve)."""
    assert rung.dev is not None
    cleared, margins = 0, []
    for target in targets:
        est = rung.dev.metrics.get(target.metric)
        if est is None or est.mean is None:
            continue
        cleared += bool(target.holds(est.mean))
        margins.append((target.value - est.mean) if target.op == "<=" else (est.mean - target.value))
    return cleared, sum(margins) / len(margins) if margins else float("-inf")


def _scored_metrics(rung: RungResult) -> set[str]:
    assert rung.dev is not None
    return {m for m, est in rung.dev.metrics.items() if est.mean is not None and not est.not_applicable}


def separating(
    best: RungResult,
    other: RungResult,
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> Comparison | Paired | None:
    """The first target, then any other reported metric, on which ``best`` and ``other`` differ
    significantly (paired test at ``alpha``, either direction); ``None`` when nothing separates them."""
    metrics = {t.metric for t in config.targets}
    target_pairs = [p for p in find(comparisons, best.label, other.label) if p.metric in metrics]
    hit = next((p for p in target_pairs if p.significant), None)
    if hit is not None:
        return hit
    if records is None or best.label not in records or other.label not in records:
        return None
    done = {p.metric for p in target_pairs}
    shared = sorted((_scored_metrics(best) & _scored_metrics(other)) - done)
    if not shared:
        return None
    for c in compare(
        best.label, other.label, records[best.label], records[other.label], shared, config.confidence
    ):
        if c.p_value is not None and c.p_value < config.alpha:
            return c
    return None


def closest_pair(
    evaluated: Sequence[RungResult],
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> tuple[RungResult, RungResult] | None:
    """``(closest, best)``: ``best`` has the best mean on the targets; ``closest`` is the cheapest
    rung that nothing separates from it (``best`` itself when every cheaper rung is separated)."""
    scored = [
        r
        for r in evaluated
        if r.dev and any((e := r.dev.metrics.get(t.metric)) and e.mean is not None for t in config.targets)
    ]
    if not scored:
        return None
    best = max(scored, key=lambda r: _target_key(r, config.targets))  # the cheapest on a tie
    for rung in scored[: scored.index(best)]:
        if separating(best, rung, comparisons, config, records) is None and find(
            comparisons, best.label, rung.label
        ):
            return rung, best
    return best, best


def closest_rung(
    evaluated: Sequence[RungResult],
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> RungResult | None:
    """The rung named closest when none meets (see ``closest_pair``)."""
    pair = closest_pair(evaluated, comparisons, config, records)
    return pair[0] if pair else None
