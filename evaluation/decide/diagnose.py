"""Why the cheaper rungs fall short: a gap diagnosis from the evidence the rungs left.

Each rule reads numbers the decision already has (estimates, paired comparisons, the
records' responses and traces) and, when it fires, adds a ``Gap`` with its evidence:

- **data too small to decide**: the closest rung's CI contains the threshold, so the data
  cannot say whether it meets. Ladder says so, with roughly how many items would separate
  them (``items_needed``: from the observed effect and spread, at 80% power; always more than
  the items used), or, past 25x the items, that the difference is too small to matter.
- **knowledge**: RAG lifts the score significantly over the first rung and retrieval finds
  the reference passages (hit rate >= ``HIGH_HIT``), yet the target is missed; or retrieval
  rarely finds them (hit rate < ``LOW_HIT``): the facts are missing from the knowledge base.
- **reading / retrieval** (per item, for a RAG rung whose items were scored for retrieval):
  the 2x2 table retrieved yes/no x answered right/wrong (right: the item passes the first
  answer target, e.g. token_f1 >= 0.5 for that one item). When most wrong answers had their
  passage retrieved, the model fails to read it: a reading gap (a stronger model, or
  fine-tuning on questions with retrieved passages: the ``finetune+rag`` rung). When most
  had not, a retrieval gap (chunking, embedder, k, fusion; or the facts are not in the
  knowledge base). This replaces the knowledge reading of "RAG lifts the score and retrieval
  works" whenever the per-item table exists.
- **behaviour / format**: answers outside the label set (a classification suite: at most
  ``MAX_LABELS`` distinct references), unparseable MCQ replies, or reflection's verifier
  still failing after its last round, at a rate >= ``FORMAT_RATE`` on every prompting rung.
- **reasoning**: reflection or the agent lifts the score significantly, but not enough; unless
  most of the items it gained were off format in the first rung (a label or option letter the
  answer missed): then the lift is a format fix, a **format** gap, not a reasoning one.
- **the model does not know this** (a knowledge gap no prompt can fix): on a multiple-choice
  suite every rung's interval on the target (accuracy or exact match) reaches down to chance
  (1 / the number of options, averaged over the items), or on a label set to the majority
  label's share of the dev items. The evidence names each rung against that baseline and the
  ways out with what each would cost (a larger model, a knowledge source for RAG, far more
  data). One rung clearly above the baseline means the model knows something: no such gap;
  a rung answering off format (``FORMAT_RATE``) is no evidence either way.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from statistics import NormalDist

from evaluation.decide.config import TOO_CLOSE, DecisionConfig, Target
from evaluation.decide.result import EVALUATED, Gap, Paired, Reason, RungResult
from evaluation.decide.rules import closest_rung, find
from evaluation.metrics.lexical import normalize
from evaluation.results import ItemRecord

HIGH_HIT, LOW_HIT = 0.7, 0.5
FORMAT_RATE = 0.2
MAX_LABELS = 20
PROMPTING = ("prompt", "fewshot", "reflection")
CHANCE_METRICS = ("accuracy", "exact_match")  # one item right or wrong: chance is a share of items
REASONING = ("reflection", "agent")


def _evaluated(rungs: Sequence[RungResult]) -> list[RungResult]:
    return [r for r in rungs if r.state == EVALUATED and r.dev is not None and r.strategy != "finetune"]


POWER = 0.8  # the chance that about ``needed`` items separate the mean from the threshold


def items_needed(
    mean: float, low: float, high: float, n: int, threshold: float, confidence: float
) -> int | None:
    """About how many items would put the threshold outside the CI, from the observed effect
    (the mean's distance to the threshold) and spread (the CI's half on the threshold's side,
    z * sd / sqrt(n)), with power ``POWER``: n * ((z_a + z_b) / z_a * half / margin)^2.
    Always more than ``n`` (the CI contains the threshold at ``n``); ``None`` when the mean sits
    on the threshold."""
    margin = abs(mean - threshold)
    if margin <= 1e-9 or n <= 0:
        return None
    half = (high - mean) if mean < threshold else (mean - low)
    z_a = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    z_b = NormalDist().inv_cdf(POWER)
    return max(n + 1, math.ceil(n * ((z_a + z_b) / z_a * half / margin) ** 2))


def data_too_small(
    rungs: Sequence[RungResult],
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> Gap | None:
    rung = closest_rung(_evaluated(rungs), comparisons, config, records)
    if rung is None or rung.dev is None:
        return None
    evidence = []
    for target in config.targets:
        est = rung.dev.metrics.get(target.metric)
        if est is None or est.mean is None or est.low is None or est.high is None:
            continue
        if est.low <= target.value <= est.high and est.bound_passes is False:
            needed = items_needed(est.mean, est.low, est.high, est.n, target.value, config.confidence)
            close = needed is None or needed > TOO_CLOSE * est.n
            evidence.append(
                Reason(
                    "ci_straddles_close" if close else "ci_straddles",
                    {
                        "rung": rung.label,
                        "metric": target.metric,
                        "mean": est.mean,
                        "low": est.low,
                        "high": est.high,
                        "threshold": target.value,
                        "margin": abs(est.mean - target.value),
                        "n": est.n,
                        "needed": needed,
                    },
                )
            )
    return Gap("data_too_small", evidence) if evidence else None


def _retrieval_hit(rung: RungResult) -> tuple[str, float] | None:
    assert rung.dev is not None
    for label, est in rung.dev.metrics.items():
        if (label.startswith("hit@") or label == "hit_at_k") and est.mean is not None:
            return label, est.mean
    return None


def _lift(comparisons: Sequence[Paired], rung: RungResult, base: RungResult, metric: str) -> Paired | None:
    return next(
        (p for p in find(comparisons, rung.label, base.label) if p.metric == metric and p.a_better), None
    )


EXAMPLES = 2  # item ids shown per cell of the RAG table


def _answer_target(config: DecisionConfig, records: Sequence[ItemRecord]) -> tuple[str, Target | None] | None:
    """The metric that says, per item, whether the answer was right: the first target that is
    not a retrieval metric, else ``contains_answer`` (right when 1)."""
    for target in config.targets:
        if not _is_retrieval(target.metric):
            return target.metric, target
    if any("contains_answer" in r.scores for r in records):
        return "contains_answer", None
    return None


def _is_retrieval(metric: str) -> bool:
    return metric.startswith(("hit@", "mrr")) or metric == "hit_at_k"


def rag_table(rung: RungResult, records: Sequence[ItemRecord], config: DecisionConfig) -> Reason | None:
    """Retrieved yes/no x answered right/wrong, per item, with counts and a few item ids."""
    hit = _retrieval_hit(rung)
    answer = _answer_target(config, records)
    if hit is None or answer is None:
        return None
    metric, target = answer
    cells: dict[str, list[str]] = {
        "retrieved_right": [],
        "retrieved_wrong": [],
        "missed_right": [],
        "missed_wrong": [],
    }
    for record in records:
        found, score = record.scores.get(hit[0]), record.scores.get(metric)
        if found is None or found.value is None or score is None or score.value is None:
            continue
        right = target.holds(score.value) if target is not None else score.value >= 1.0
        cell = ("retrieved_" if found.value >= 1.0 else "missed_") + ("right" if right else "wrong")
        cells[cell].append(record.item_id)
    if not any(cells.values()):
        return None
    params: dict[str, object] = {"rung": rung.label, "hit_metric": hit[0], "metric": metric}
    params["right_if"] = f"{target.op or '>='} {target.value:g}" if target is not None else "= 1"
    for cell, ids in cells.items():
        params[cell] = len(ids)
        params[f"{cell}_examples"] = ids[:EXAMPLES]
    return Reason("rag_table", params)


def rag_misses(
    rungs: Sequence[RungResult], records: dict[str, list[ItemRecord]], config: DecisionConfig
) -> list[Gap]:
    """A reading or a retrieval gap for each RAG rung that falls short, from its per-item table."""
    gaps = []
    for rung in _rag_with_table(rungs, records):
        table = rag_table(rung, records[rung.label], config)
        if table is None:
            continue
        read, missed = int(table.params["retrieved_wrong"]), int(table.params["missed_wrong"])
        wrong = read + missed
        if wrong == 0:
            continue
        params = {"rung": rung.label, "wrong": wrong, "read": read, "missed": missed}
        if read >= missed:
            gaps.append(Gap("reading", [table, Reason("reading_gap", params)]))
        else:
            gaps.append(Gap("retrieval", [table, Reason("retrieval_gap", params)]))
    return gaps


def _rag_with_table(rungs: Sequence[RungResult], records: dict[str, list[ItemRecord]]) -> list[RungResult]:
    """The RAG rungs that fall short and whose items were scored for retrieval one by one."""
    out = []
    for rung in rungs:
        if rung.state != EVALUATED or rung.dev is None or rung.strategy != "rag" or rung.meets:
            continue
        hit = _retrieval_hit(rung)
        if hit is not None and rung.label in records:
            out.append(rung)
    return out


def _lift_params(rung: RungResult, base: RungResult, metric: str, lift: Paired) -> dict[str, object]:
    return {"rung": rung.label, "base": base.label, "metric": metric, "diff": lift.diff, "p": lift.p_value}


def knowledge(
    rungs: Sequence[RungResult],
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> Gap | None:
    done = _evaluated(rungs)
    tabled = {r.label for r in _rag_with_table(rungs, records or {})}
    rag = [r for r in done if r.strategy == "rag" and not r.meets]
    if not done or not rag:
        return None
    base, metric = done[0], config.targets[0].metric
    evidence = []
    for rung in rag:
        hit = _retrieval_hit(rung)
        lift = _lift(comparisons, rung, base, metric) if rung is not base else None
        if hit is not None and hit[1] < LOW_HIT:
            evidence.append(
                Reason(
                    "kb_missing_facts", {"rung": rung.label, "metric": hit[0], "hit": hit[1], "low": LOW_HIT}
                )
            )
        elif lift is not None and (hit is None or hit[1] >= HIGH_HIT) and rung.label not in tabled:
            # Without a per-item table; with one, ``rag_misses`` says reading or retrieval.
            params = _lift_params(rung, base, metric, lift)
            if hit is not None:
                params.update(hit_metric=hit[0], hit=hit[1])
            evidence.append(Reason("rag_lifts_short", params))
    return Gap("knowledge", evidence) if evidence else None


def label_set(records: Sequence[ItemRecord]) -> set[str] | None:
    """The normalised references when they look like a label set (a classification suite)."""
    if any(r.choices for r in records):
        return None  # multiple choice: the `unparseable` metric says which replies named no option
    references = [normalize(r.reference) for r in records if r.reference]
    labels = set(references)
    if not references or len(labels) > MAX_LABELS or len(labels) * 2 > len(references):
        return None
    return labels


def off_format_rate(records: Sequence[ItemRecord], labels: set[str] | None) -> tuple[float, list[str]]:
    """The share of answers that are off format, and a few of them."""
    bad = [record.response or "" for record in records if off_format(record, labels)]
    return (len(bad) / len(records) if records else 0.0), bad[:3]


def off_format(record: ItemRecord, labels: set[str] | None) -> bool:
    """Unparseable, naming no option of a multiple-choice item, not one of the labels, or still
    failing reflection's verifier at its last round."""
    unparseable = record.scores.get("unparseable")
    if unparseable is not None and unparseable.value == 1.0:
        return True
    if record.choices and any(
        (score.detail or {}).get("mode") == "generate" and (score.detail or {}).get("predicted", "") is None
        for score in record.scores.values()
    ):
        return True  # a generated answer to a multiple-choice item that names no option
    if labels is not None and record.response is not None and normalize(record.response) not in labels:
        return True
    return any(step.get("kind") == "stop" and step.get("reason") == "max_rounds" for step in record.trace)


def behaviour(rungs: Sequence[RungResult], records: dict[str, list[ItemRecord]]) -> Gap | None:
    prompting = [
        r for r in _evaluated(rungs) if r.strategy in PROMPTING and r.label in records and not r.meets
    ]
    if not prompting:
        return None
    labels = label_set(records[prompting[0].label])
    rates = {r.label: off_format_rate(records[r.label], labels) for r in prompting}
    if not all(rate >= FORMAT_RATE for rate, _ in rates.values()):
        return None
    evidence = [
        Reason(
            "off_format",
            {"rung": label, "rate": rate, "examples": examples, "labels": sorted(labels) if labels else None},
        )
        for label, (rate, examples) in rates.items()
    ]
    if len(rates) > 1:
        evidence.append(Reason("format_persists", {"rungs": list(rates), "rate": FORMAT_RATE}))
    return Gap("behaviour", evidence)


def reasoning(
    rungs: Sequence[RungResult],
    comparisons: Sequence[Paired],
    config: DecisionConfig,
    records: dict[str, list[ItemRecord]] | None = None,
) -> tuple[Gap | None, Gap | None]:
    """``(reasoning gap, format gap)``: a significant lift from reflection or the agent that falls
    short is a reasoning gap, unless most of the items it gained were off format before (the
    label, the option letter): then it fixed the format, a format gap."""
    done = _evaluated(rungs)
    if not done:
        return None, None
    base, target = done[0], config.targets[0]
    metric = target.metric
    evidence, fixes = [], []
    for rung in done[1:]:
        lift = _lift(comparisons, rung, base, metric)
        if rung.strategy not in REASONING or rung.meets or lift is None:
            continue
        params = _lift_params(rung, base, metric, lift)
        gained, fixed = _format_fixes(records or {}, base.label, rung.label, target)
        if gained and fixed * 2 >= gained:
            fixes.append(Reason("format_fix_lifts", {**params, "gained": gained, "fixed": fixed}))
        else:
            evidence.append(Reason("reasoning_lifts_short", params))
    return (Gap("reasoning", evidence) if evidence else None), (Gap("behaviour", fixes) if fixes else None)


def _format_fixes(
    records: dict[str, list[ItemRecord]], base: str, rung: str, target: Target
) -> tuple[int, int]:
    """Items ``rung`` got right and ``base`` wrong, and how many of those ``base`` answered off format."""
    if base not in records or rung not in records:
        return 0, 0
    labels = label_set(records[base])
    before = {r.item_id: r for r in records[base]}
    gained = fixed = 0
    for record in records[rung]:
        old = before.get(record.item_id)
        now, then = record.scores.get(target.metric), old.scores.get(target.metric) if old else None
        if old is None or now is None or then is None or now.value is None:
            continue
        if target.holds(now.value) and not target.holds(then.value):
            gained += 1
            fixed += off_format(old, labels)
    return gained, fixed


def baseline(records: Sequence[ItemRecord]) -> tuple[str, float] | None:
    """``("chance", 1/options averaged over the items)`` for a multiple-choice suite,
    ``("majority", the commonest label's share)`` for a label set, else ``None``."""
    if records and all(r.choices for r in records):
        return "chance", sum(1 / len(r.choices or ()) for r in records) / len(records)
    if label_set(records) is None:
        return None
    references = [normalize(r.reference) for r in records if r.reference]
    return "majority", Counter(references).most_common(1)[0][1] / len(references)


def _remedies(
    done: Sequence[RungResult], rungs: Sequence[RungResult], config: DecisionConfig, kind: str
) -> list[Reason]:
    """The ways out of a gap no prompt can fix, each with what it would cost, from this decision's
    numbers: for an exam a larger model, a knowledge source, far more data; for labels, labelled
    examples to fine-tune on, then a larger model."""
    base = done[0]
    assert base.dev is not None
    current = {
        "rung": base.label,
        "cost": base.dev.cost_per_1k,
        "currency": base.dev.currency,
        "tokens": base.dev.tokens_per_question,
    }
    rag = next((r for r in rungs if r.strategy == "rag"), None)
    stated = {r.strategy: r.stated_cost for r in rungs if r.stated_cost is not None}
    extra = (
        stated["rag"] - stated[base.strategy]
        if rag is not None and "rag" in stated and base.strategy in stated
        else None
    )
    source = (
        Reason("remedy_better_kb", {"rung": rag.label})
        if rag is not None and rag.state == EVALUATED
        else Reason("remedy_knowledge_source", {"extra_tokens": extra})
    )
    if kind == "majority":
        labels = {
            "min_examples": config.finetune.min_examples,
            "min_per_label": config.finetune.min_per_label,
        }
        return [Reason("remedy_labelled_data", labels), Reason("remedy_larger_model", current)]
    return [
        Reason("remedy_larger_model", current),
        source,
        Reason("remedy_more_data", {"min_examples": config.finetune.min_examples}),
    ]


def at_chance(
    rungs: Sequence[RungResult], records: dict[str, list[ItemRecord]], config: DecisionConfig
) -> Gap | None:
    """Every rung no better than chance (or than always answering the majority label)."""
    done = [r for r in rungs if r.state == EVALUATED and r.dev is not None and r.label in records]
    target = next((t for t in config.targets if t.metric in CHANCE_METRICS and t.op != "<="), None)
    if not done or target is None:
        return None
    found = baseline(records[done[0].label])
    if found is None:
        return None
    kind, level = found
    labels = label_set(records[done[0].label])
    evidence = []
    for rung in done:
        assert rung.dev is not None
        est = rung.dev.metrics.get(target.metric)
        if est is None or est.mean is None or est.low is None or est.high is None:
            continue
        if est.low > level:
            return None  # clearly above the baseline: the model knows something
        if off_format_rate(records[rung.label], labels)[0] >= FORMAT_RATE:
            continue  # answers off format say nothing of what the model knows (a behaviour gap)
        evidence.append(
            Reason(
                "at_chance" if kind == "chance" else "at_majority",
                {
                    "rung": rung.label,
                    "metric": target.metric,
                    "mean": est.mean,
                    "low": est.low,
                    "high": est.high,
                    "chance": level,
                    "n": est.n,
                },
            )
        )
    if not evidence:
        return None
    return Gap("knowledge", evidence + _remedies(done, rungs, config, kind))


def no_closest_at_chance(reasons: Sequence[Reason], gaps: Sequence[Gap]) -> list[Reason]:
    """With every rung at chance, "the closest is prompt" is true and useless: the reason
    becomes "no rung beats chance", and the gap says what would help."""
    chance = [e for g in gaps for e in g.evidence if e.code in ("at_chance", "at_majority")]
    if not chance:
        return list(reasons)
    params = {
        "metric": chance[0].params["metric"],
        "chance": chance[0].params["chance"],
        "baseline": "chance" if chance[0].code == "at_chance" else "majority",
    }
    kept = [r for r in reasons if not r.code.startswith("closest")]
    return [*kept, Reason("beats_no_baseline", params)]


def diagnose(
    rungs: Sequence[RungResult],
    comparisons: Sequence[Paired],
    records: dict[str, list[ItemRecord]],
    config: DecisionConfig,
) -> list[Gap]:
    """Every gap the evidence supports; "the model does not know this" first (no rung beats
    chance, so nothing else matters much), then "data too small", since it qualifies the rest."""
    chance = at_chance(rungs, records, config)
    found = [
        chance,
        None if chance is not None else data_too_small(rungs, comparisons, config, records),
        knowledge(rungs, comparisons, config, records),
        behaviour(rungs, records),
        *reasoning(rungs, comparisons, config, records),
    ]
    found += rag_misses(rungs, records, config)
    return [gap for gap in found if gap is not None]
