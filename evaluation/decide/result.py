"""What a decision produces: one ``RungResult`` per rung, the paired comparisons, the gap
diagnosis, fine-tuning readiness, the forgetting check and the verdict.

Plain dataclasses that round-trip through JSON (``to_dict``/``from_dict``), so a decision
shown from the store (``ladder decisions show``) says exactly what the run said. Reasons are
stored as codes with parameters and put into words (English or Chinese) only when rendered.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from evaluation.decide.curve import Curve
from evaluation.decide.search import RungSearch

# Decision states. MET and TIE recommend a rung that met the target (exit code 0).
MET, TIE, NOT_MET, NOT_CONFIRMED = "met", "tie", "not_met", "not_confirmed"
# Rung states.
EVALUATED, SKIPPED, NOT_RUN, RECOMMENDED_ONLY = "evaluated", "skipped", "not_run", "recommended_only"


@dataclass
class Reason:
    """A sentence to say, as a code and its parameters (see ``decide_text``)."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Estimate:
    """A metric over one rung's items at the decision's confidence, against its target."""

    metric: str
    mean: float | None
    low: float | None
    high: float | None
    n: int
    n_na: int = 0
    target: str | None = None  # "exact_match >= 0.8"
    op: str = ">="
    threshold: float | None = None
    bound_passes: bool | None = None  # the CI bound on the target's side clears the threshold
    mean_passes: bool | None = None
    not_applicable: bool = False  # e.g. hit@k for a rung that does not retrieve: no target to miss

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


@dataclass
class SuiteScores:
    """A rung's (or model's) numbers on one suite."""

    suite: str
    run_id: str | None
    metrics: dict[str, Estimate] = field(default_factory=dict)
    cost_per_1k: float | None = None
    currency: str = "USD"
    price_source: str = ""
    p95_latency_s: float | None = None
    tokens_per_question: float | None = None
    calls_per_question: float | None = None
    items: int = 0
    model_calls: int = 0  # made in this decision (0: everything from the cache)


@dataclass
class RungResult:
    label: str
    strategy: str  # the strategy name; "finetune" for the fine-tuned model
    model: str = ""
    stated_cost: float | None = None  # expected tokens per question (the strategy's own estimate)
    state: str = NOT_RUN  # evaluated | skipped | not_run | recommended_only
    note: str = ""  # why skipped / not run
    dev: SuiteScores | None = None
    test: SuiteScores | None = None
    general: SuiteScores | None = None
    meets: bool = False
    misses: list[Reason] = field(default_factory=list)  # why it does not meet
    config: dict[str, Any] = field(default_factory=dict)
    # The search of its knobs, when it missed as written (``config`` is then the chosen one and
    # ``dev`` its scores on the dev items the search did not tune on).
    search: RungSearch | None = None


@dataclass
class Paired:
    """``a`` minus ``b`` on the dev items both answered, for one target metric."""

    a: str
    b: str
    metric: str
    diff: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    test: str
    significant: bool  # p < alpha
    a_better: bool  # significant and in the target's direction


@dataclass
class Gap:
    kind: str  # knowledge | reading | retrieval | behaviour | reasoning | data_too_small
    evidence: list[Reason] = field(default_factory=list)


@dataclass
class Check:
    """One readiness rule: what was measured, the rule, and whether it holds."""

    name: str
    ok: bool
    value: Any
    rule: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Readiness:
    ready: bool
    examples: int = 0
    checks: list[Check] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)  # where, tokens/s, hours, cost, source
    train_tokens: int = 0
    epochs: float = 0.0
    command: str = ""  # the command to run the fine-tune by hand

    @property
    def blocking(self) -> list[Check]:
        """The failed checks that keep the fine-tune from starting (an overlap with the dev split
        is reported, not blocking: it flatters the dev score but leaks nothing into the test)."""
        return [c for c in self.checks if not c.ok and c.name not in NON_BLOCKING]

    @property
    def only_over_budget(self) -> bool:
        """Ready but for the time budget (``finetune.max_minutes``)."""
        return [c.name for c in self.blocking] == ["time_budget"]


NON_BLOCKING = ("dev_overlap",)


@dataclass
class Forgetting:
    metric: str
    before: float | None
    after: float | None
    drop: float | None
    max_drop: float
    passed: bool
    p_value: float | None = None


@dataclass
class RouteCheck:
    """The route rung (``decide.route``), offered when the fine-tune failed or nearly failed the
    forgetting check: routing against the fine-tune, general ability against the base, the router."""

    offered: str  # "failed" | "near"
    rung: str
    metric: str
    finetune_mean: float | None
    finetune_low: float | None
    finetune_high: float | None
    route_mean: float | None
    within_finetune_ci: bool | None
    general_metric: str
    base_mean: float | None
    base_low: float | None
    base_high: float | None
    route_general_mean: float | None
    within_base_ci: bool | None
    finetune_general_mean: float | None = None
    general_drop: float | None = None  # route against base on the general suite
    # embedder, k, threshold, accuracies (in-domain, general, held-out balanced), router_ms, ...
    router: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision:
    decision_id: str
    name: str
    created: str
    status: str  # met | tie | not_met | not_confirmed
    recommended: str | None
    config_path: str = ""
    model: str = ""
    dev_suite: str = ""
    test_suite: str = ""
    general_suite: str | None = None
    targets: list[str] = field(default_factory=list)
    limits: dict[str, float | None] = field(default_factory=dict)
    confidence: float = 0.95
    rungs: list[RungResult] = field(default_factory=list)
    comparisons: list[Paired] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    readiness: Readiness | None = None
    forgetting: Forgetting | None = None
    adapter: str | None = None
    reasons: list[Reason] = field(default_factory=list)
    language: str = "en"
    model_calls: int = 0
    # The judge of every rung's judged metrics, its calls apart from the answering model's, and
    # its agreement with people on each judged target (``ladder judge check``), in words.
    judge: str | None = None
    judge_calls: int = 0
    judge_agreement: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    # The learning curve of the rung that learns from examples, when nothing met (or why not).
    curve: Curve | None = None
    curve_note: str = ""
    # What makes the verdict less sure without changing it (evaluation.decide.warnings): a dev or
    # test suite generated by a model and not reviewed by a person.
    warnings: list[Reason] = field(default_factory=list)
    # The route rung's measurements, when the fine-tune failed or nearly failed forgetting.
    route: RouteCheck | None = None

    @property
    def passed(self) -> bool:
        return self.status in (MET, TIE)

    def rung(self, label: str) -> RungResult:
        return next(r for r in self.rungs if r.label == label)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        values = dict(data)
        for words in ("explanation", "warnings_text"):  # render_json's text, rebuilt when shown
            values.pop(words, None)
        values["rungs"] = [_rung(r) for r in data.get("rungs", [])]
        values["comparisons"] = [Paired(**c) for c in data.get("comparisons", [])]
        values["gaps"] = [Gap(g["kind"], _reasons(g.get("evidence"))) for g in data.get("gaps", [])]
        if data.get("readiness"):
            ready = dict(data["readiness"])
            ready["checks"] = [Check(**c) for c in ready.get("checks", [])]
            values["readiness"] = Readiness(**ready)
        if data.get("forgetting"):
            values["forgetting"] = Forgetting(**data["forgetting"])
        values["reasons"] = _reasons(data.get("reasons"))
        values["warnings"] = _reasons(data.get("warnings"))
        values["curve"] = Curve.from_dict(data["curve"]) if data.get("curve") else None
        values["route"] = RouteCheck(**data["route"]) if data.get("route") else None
        return cls(**values)


def _reasons(items: list[dict[str, Any]] | None) -> list[Reason]:
    return [Reason(r["code"], dict(r.get("params") or {})) for r in items or []]


def _scores(data: dict[str, Any] | None) -> SuiteScores | None:
    if not data:
        return None
    values = dict(data)
    values["metrics"] = {k: Estimate(**v) for k, v in (data.get("metrics") or {}).items()}
    return SuiteScores(**values)


def _rung(data: dict[str, Any]) -> RungResult:
    values = dict(data)
    for key in ("dev", "test", "general"):
        values[key] = _scores(data.get(key))
    values["misses"] = _reasons(data.get("misses"))
    values["search"] = RungSearch.from_dict(data["search"]) if data.get("search") else None
    return RungResult(**values)
