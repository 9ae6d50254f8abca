"""What an evaluation run produces: per-item records and per-strategy summaries.

These plain dataclasses are the contract between the runner (which fills them), the store
(which keeps them as JSON in SQLite), the reports (Markdown, HTML, JSON, JUnit) and the
CLI/UI. ``to_dict``/``from_dict`` round-trip through JSON exactly, so a report rendered
from the store is the report rendered right after the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Run states. Only "complete" runs have summaries a decision may use.
RUNNING, COMPLETE, FAILED = "running", "complete", "failed"


@dataclass
class ItemScore:
    """One metric on one item; ``value`` None is n/a and ``reason`` says why."""

    value: float | None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemRecord:
    """One strategy's answer to one suite item, with everything needed to audit its scores."""

    strategy: str  # the strategy's label in this run (e.g. "prompt", "rag", "rag-k8")
    item_id: str
    cache_key: str
    user_input: str  # the bare question
    prompt: str  # the full text put to the model (template, exemplars, options)
    response: str | None
    reference: str | None
    retrieved_contexts: list[str] = field(default_factory=list)
    reference_contexts: list[str] | None = None
    choices: list[str] | None = None
    choice_scores: list[float] | None = None  # MCQ logprob mode
    scores: dict[str, ItemScore] = field(default_factory=dict)  # metric label -> score
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    latency_s: float = 0.0
    compute_s: float = 0.0  # machine time spent on this item: its batch's wall time / batch size
    model_id: str = ""
    subject: str | None = None
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    source: str = ""  # "file:line"
    cached: bool = False  # answered from the cache: no model call in this run
    trace: list[dict[str, Any]] = field(default_factory=list)
    # The judge's work on this item when it was scored: its share of each judge call over a
    # batch (the batch's judge calls, tokens and wall time divided by the items judged), like
    # compute_s. 0 for judgements from the cache. Older records lack them: 0.
    judge_calls: float = 0.0
    judge_prompt_tokens: float = 0.0
    judge_completion_tokens: float = 0.0
    judge_compute_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemRecord:
        values = dict(data)
        values["scores"] = {k: ItemScore(**v) for k, v in (data.get("scores") or {}).items()}
        return cls(**values)

    @property
    def generated(self) -> bool:
        """Made by ``ladder suite generate`` rather than written by a person."""
        return "generated" in self.tags


@dataclass
class MetricResult:
    """A metric's aggregate over one strategy's items, with its bootstrap CI."""

    label: str
    mean: float | None
    low: float | None
    high: float | None
    n: int  # items scored
    n_na: int  # items with n/a, by reason below
    na_reasons: dict[str, int] = field(default_factory=dict)
    higher_is_better: bool = True
    threshold: float | None = None
    passed: bool | None = None  # None: no threshold, or nothing scored


@dataclass
class GroupResult:
    """Accuracy (or any metric mean) for one subject or category."""

    group: str
    mean: float | None
    n: int
    n_na: int


@dataclass
class CostResult:
    """Cost per question, from the records' usage and the price table.

    Two times, never mixed: ``compute_s_mean`` is the machine time per question of the batched
    run (each batch's wall time divided by the items it held), what the price is charged on;
    ``latency_p50_s``/``latency_p95_s`` are the *single-request* latency, what one user waits
    for one answer, measured on ``latency_n`` requests answered one at a time
    (``latency_source`` says how). A batch's wall time is neither.
    """

    questions: int
    prompt_tokens_mean: float
    completion_tokens_mean: float
    model_calls_mean: float
    latency_p50_s: float | None  # single request, nearest rank over latency_n requests
    latency_p95_s: float | None  # single request; with fewer than 20 requests, the slowest one
    cost_per_1k_questions: float | None  # in the price table's currency; None: no price known
    currency: str = "USD"
    price_source: str = ""  # which price-table entry, or why there is none
    cached_items: int = 0  # answered from the cache (latency is the original run's)
    compute_s_mean: float | None = None  # per question, batched: batch wall time / batch size
    latency_n: int = 0  # single requests the latency percentiles come from; 0: not measured
    latency_source: str = ""  # how they were measured (LATENCY_SAMPLE, LATENCY_EVERY_ITEM, ...)
    # The judge's share, kept apart: what scoring the answers cost, not what answering costs
    # (``cost_per_1k_questions`` and a decision's cost limit are the answering model's only).
    # Per question, over the items judged in the run that scored them; a cached judgement is 0.
    judge_model: str = ""  # the judge's model reference; "": no judge
    judge_calls_mean: float = 0.0
    judge_prompt_tokens_mean: float = 0.0
    judge_completion_tokens_mean: float = 0.0
    judge_compute_s_mean: float = 0.0  # the judge's wall time per question
    judge_cost_per_1k_questions: float | None = None  # None: no price known for the judge
    judge_price_source: str = ""


@dataclass
class StrategyResult:
    strategy: str  # label
    config: dict[str, Any]
    config_hash: str
    model_id: str
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    # "subject" / "category" -> group -> result, for the suite's main metric (MCQ: accuracy).
    breakdown: dict[str, dict[str, GroupResult]] = field(default_factory=dict)
    breakdown_metric: str | None = None
    cost: CostResult | None = None


@dataclass
class Comparison:
    """Strategy ``a`` minus strategy ``b`` on the same items, for one metric."""

    metric: str
    a: str
    b: str
    diff: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    test: str  # "paired bootstrap" or "McNemar exact"


@dataclass
class RunResult:
    run_id: str
    suite: str  # suite name
    suite_path: str
    kind: str  # "qa" | "mcq"
    status: str  # RUNNING | COMPLETE | FAILED
    created: str  # ISO time
    finished: str | None = None
    model: str = ""  # the model reference the run was asked for
    judge: str | None = None  # the judge model reference; None: deterministic metrics only
    mode: str = "generate"  # MCQ: "logprob" | "generate"
    strategies: list[StrategyResult] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    records: list[ItemRecord] = field(default_factory=list)
    thresholds: dict[str, float] = field(
        default_factory=dict
    )  # metric label -> minimum (maximum if lower is better)
    failures: list[str] = field(default_factory=list)  # missed thresholds, in words
    error: str | None = None  # why a FAILED run stopped
    wall_s: float = 0.0
    model_calls: int = 0  # calls made in this run (0 when everything came from the cache)
    latency_calls: int = 0  # further calls made only to measure single-request latency
    # The judge's calls and tokens in this run, apart from the answering model's model_calls;
    # judgements from the cache cost none and are counted in judge_cached. None: a run stored
    # before judge calls were counted.
    judge_calls: int | None = None
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    judge_cached: int = 0
    # How far the judge agrees with people on each judged metric of the run, as ``ladder judge
    # check`` stored it when the run started (evaluation.calibration): metric label -> the stored
    # agreement (concordance, low, high, n, failed, created), or None when never checked.
    judge_agreement: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # A generated suite that no person reviewed, in words (evaluation.suites.spec.review_note), as
    # it stood when the run started; None for a reviewed or hand-written suite.
    suite_review: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == COMPLETE and not self.failures

    def records_for(self, strategy: str) -> list[ItemRecord]:
        return [r for r in self.records if r.strategy == strategy]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        values = dict(data)
        values["strategies"] = [_strategy_from_dict(s) for s in data.get("strategies", [])]
        values["comparisons"] = [Comparison(**c) for c in data.get("comparisons", [])]
        values["records"] = [ItemRecord.from_dict(r) for r in data.get("records", [])]
        return cls(**values)


def _strategy_from_dict(data: dict[str, Any]) -> StrategyResult:
    values = dict(data)
    values["metrics"] = {k: MetricResult(**v) for k, v in (data.get("metrics") or {}).items()}
    values["breakdown"] = {
        by: {g: GroupResult(**r) for g, r in groups.items()}
        for by, groups in (data.get("breakdown") or {}).items()
    }
    values["cost"] = CostResult(**data["cost"]) if data.get("cost") else None
    return StrategyResult(**values)
