"""Alert rules, and checking them (``ladder monitor check``).

A rule file is YAML::

    rules:
      - name: unhappy users                 # optional; default: the rule's text
        when: thumbs_down_rate over 7d > 0.3 with >= 20 ratings
      - not_in_kb_rate over 7d > 0.4 with >= 50 questions    # a bare string is a rule too
      - drift_far_p over 7d < 0.01 with >= 20 questions
    drift:                                  # optional: the reference of the drift_* rules
      decision: latest                      # a decision id (its dev suite and kb), or
      suite: suites/dev.yaml                # a suite file; and
      kb: handbook                          # the knowledge base (default: the decision's)

A rule is ``<metric> over <N>d <op> <threshold> [with >= <M> <anything>]``; ``op`` is one of
``> >= < <=``; a threshold may end in ``ms``. ``with >= M`` is the least sample the rule needs
(the metric's own sample: ratings for the thumbs-down rate, answers with a knowledge base for
the not-in-KB rate, distinct recent questions for drift, ...); with less it does not fire and
says "not enough data". Metrics: see ``METRICS``.

``check`` returns one ``AlertResult`` per rule; a rule fires when its value crosses the
threshold with enough data. Drift rules without a reference are skipped, with the reason.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.settings import Settings
from evaluation.monitor.series import Stats, window_stats

if TYPE_CHECKING:
    from evaluation.monitor.drift import DriftReference, DriftReport

# metric -> (the Stats field or drift value, the field giving its sample size, what the sample counts)
METRICS: dict[str, tuple[str, str, str]] = {
    "volume": ("questions", "questions", "questions"),
    "thumbs_down_rate": ("thumbs_down_rate", "ratings", "ratings"),
    "not_in_kb_rate": ("not_in_kb_rate", "kb_answers", "answers with a knowledge base"),
    "citation_rate": ("citation_rate", "citable", "answers that could cite"),
    "latency_p50_ms": ("latency_p50_ms", "questions", "questions"),
    "latency_p95_ms": ("latency_p95_ms", "questions", "questions"),
    "best_score_median": ("best_score_median", "scored", "answers that retrieved"),
    "best_score_p10": ("best_score_p10", "scored", "answers that retrieved"),
    "drift_far_share": ("far_share", "recent", "distinct questions"),
    "drift_far_p": ("far_p", "recent", "distinct questions"),
    "drift_ks_p_kb": ("ks_p:kb", "recent", "distinct questions"),
    "drift_ks_p_dev": ("ks_p:dev", "recent", "distinct questions"),
}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(
    rf"^\s*(?P<metric>[a-z0-9_]+)\s+over\s+(?P<days>{_NUMBER})\s*d\s*(?P<op>>=|<=|>|<)\s*"
    rf"(?P<value>{_NUMBER})\s*(?:ms)?\s*(?:with\s*>=\s*(?P<min>\d+)(?:\s+[\w -]+)?)?\s*$"
)
DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
FIRING, QUIET, NOT_ENOUGH, SKIPPED = "firing", "quiet", "not enough data", "skipped"


@dataclass(frozen=True)
class Rule:
    name: str
    text: str
    metric: str
    days: float
    op: str
    threshold: float
    min_samples: int = 0

    @property
    def is_drift(self) -> bool:
        return self.metric.startswith("drift_")


@dataclass
class AlertResult:
    rule: str
    text: str
    metric: str
    window_days: float
    op: str
    threshold: float
    value: float | None
    samples: int
    sample_of: str
    min_samples: int
    state: str  # firing | quiet | not enough data | skipped
    note: str = ""

    @property
    def firing(self) -> bool:
        return self.state == FIRING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RuleFile:
    rules: list[Rule]
    drift_decision: str | None = None
    drift_suite: Path | None = None
    drift_kb: str | None = None


def parse_rule(text: str, name: str | None = None, where: str = "rule") -> Rule:
    match = _RULE.match(text)
    if match is None:
        raise ConfigError(
            f"{where}: cannot read {text!r}",
            hint="write e.g. 'thumbs_down_rate over 7d > 0.3 with >= 20 ratings'",
        )
    metric = match["metric"]
    if metric not in METRICS:
        raise ConfigError(f"{where}: unknown metric {metric!r}", hint=f"use one of {', '.join(METRICS)}")
    days = float(match["days"])
    if days <= 0:
        raise ConfigError(f"{where}: the window must be > 0 days, got {match['days']}")
    return Rule(
        name=name or text.strip(),
        text=text.strip(),
        metric=metric,
        days=days,
        op=match["op"],
        threshold=float(match["value"]),
        min_samples=int(match["min"] or 0),
    )


def load_rules(path: Path | None = None) -> RuleFile:
    """The rules of ``path`` (default: the shipped ``default_rules.yaml``); ``ConfigError`` names
    the file and the rule for every mistake."""
    import yaml

    path = path or DEFAULT_RULES
    if not path.is_file():
        raise ConfigError(f"rule file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty `rules:` list")
    unknown = set(data) - {"rules", "drift"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}", hint="use rules and drift")
    rules = []
    for number, entry in enumerate(data["rules"], start=1):
        where = f"{path}: rules[{number}]"
        if isinstance(entry, str):
            rules.append(parse_rule(entry, where=where))
        elif (
            isinstance(entry, dict) and isinstance(entry.get("when"), str) and set(entry) <= {"name", "when"}
        ):
            rules.append(parse_rule(entry["when"], str(entry["name"]) if entry.get("name") else None, where))
        else:
            raise ConfigError(f"{where}: a rule is a string or a mapping with `when:` (and `name:`)")
    drift = data.get("drift") or {}
    if not isinstance(drift, dict) or set(drift) - {"decision", "suite", "kb"}:
        raise ConfigError(f"{path}: `drift:` is a mapping of decision, suite and kb")
    suite = Path(str(drift["suite"])) if drift.get("suite") else None
    if suite is not None and not suite.is_absolute():
        suite = path.parent / suite
    return RuleFile(
        rules,
        drift_decision=str(drift["decision"]) if drift.get("decision") else None,
        drift_suite=suite,
        drift_kb=str(drift["kb"]) if drift.get("kb") else None,
    )


def _drift_value(report: DriftReport, field: str) -> float | None:
    if field.startswith("ks_p:"):
        similarity = report.similarity(field.partition(":")[2])
        return similarity.ks_p if similarity else None
    value = getattr(report, field)
    return None if value is None else float(value)


def evaluate(
    rule: Rule, value: float | None, samples: int, sample_of: str, note: str = "", state: str | None = None
) -> AlertResult:
    """The rule's result for a value and its sample size (``state`` given: that state, as is)."""
    if state is None:
        if value is None:
            state, note = NOT_ENOUGH, note or "no value (n/a) in the window"
        elif samples < rule.min_samples:
            state = NOT_ENOUGH
            note = note or f"{samples} {sample_of}, the rule needs >= {rule.min_samples}"
        else:
            state = FIRING if OPS[rule.op](value, rule.threshold) else QUIET
    return AlertResult(rule.name, rule.text, rule.metric, rule.days, rule.op, rule.threshold, value, samples,
                       sample_of, rule.min_samples, state, note)  # fmt: skip


def check(
    settings: Settings,
    rules: Sequence[Rule],
    *,
    as_of: datetime | None = None,
    drift_reference: DriftReference | None = None,
    kb: Any = None,
) -> list[AlertResult]:
    """Every rule's result; drift rules use ``drift_reference`` (and ``kb``: a name or an open
    knowledge base; default the reference's) and are skipped without one."""
    from evaluation.monitor.drift import drift

    as_of = as_of or datetime.now(UTC)
    stats: dict[float, Stats] = {}
    drifts: dict[float, DriftReport] = {}
    results = []
    for rule in rules:
        field, sample_field, sample_of = METRICS[rule.metric]
        if not rule.is_drift:
            if rule.days not in stats:
                stats[rule.days] = window_stats(settings, rule.days, as_of)
            window = stats[rule.days]
            value = getattr(window, field)
            results.append(evaluate(rule, value, int(getattr(window, sample_field)), sample_of))
            continue
        if drift_reference is None:
            note = "no drift reference: give --decision ID or --suite FILE (or drift: in the rule file)"
            results.append(evaluate(rule, None, 0, sample_of, note, state=SKIPPED))
            continue
        if rule.days not in drifts:
            drifts[rule.days] = drift(settings, drift_reference, kb=kb, days=rule.days, as_of=as_of)
        report = drifts[rule.days]
        note = "; ".join(report.notes)
        results.append(evaluate(rule, _drift_value(report, field), report.recent, sample_of, note))
    return results


def any_firing(results: Sequence[AlertResult]) -> bool:
    return any(r.firing for r in results)
