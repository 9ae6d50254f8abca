"""May a decision rest on a judged target? Only when its judge agrees with people.

A decision's target on a judged metric (faithfulness, answer relevancy, ...) is a claim about
quality only as far as the judge's scores follow a person's. Before the rungs run, each judged
target's judge is looked up in the stored checks (``ladder judge check``); a judge never checked
on that metric is checked now, on the project's labelled set (progress shown; the result is
stored). A judge whose agreement is below the bar is refused with the measured agreement and
the ways out: a stronger judge, an endpoint, or a lexical metric.

The default bar, 0.70 concordance, is a policy, not a fit: it asks that the judge order at
least 7 in 10 pairs of differently labelled items as a person does (a coin orders 5). It was
set before any judge was measured; the closing note of issue 16 lists what the local packs and
a scripted strong judge measure against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from evaluation.calibration.data import load_set
from evaluation.calibration.store import StoredAgreement, save, stored_agreement

if TYPE_CHECKING:
    from assistant.progress import Progress
    from assistant.settings import Settings

DEFAULT_MIN_AGREEMENT = 0.70


UNMEASURABLE = (
    "not measured: the labelled set has no verdicts for this metric, so its judge's agreement is unknown"
)


@dataclass(frozen=True)
class GateResult:
    metric: str
    judge: str
    agreement: StoredAgreement | None  # None: the labelled set has no verdicts for the metric
    bar: float
    measured_now: bool

    @property
    def ok(self) -> bool:
        """Refused only on evidence: a metric the set cannot measure passes, said in ``describe``."""
        if self.agreement is None:
            return True
        value = self.agreement.concordance
        return value is not None and value >= self.bar

    def describe(self) -> str:
        return UNMEASURABLE if self.agreement is None else self.agreement.describe()


def check_judged_targets(
    settings: Settings,
    judge_ref: str,
    metrics: Sequence[str],
    bar: float = DEFAULT_MIN_AGREEMENT,
    judge_factory: Callable[[], Any] | None = None,
    progress: Progress | None = None,
) -> list[GateResult]:
    """One ``GateResult`` per judged target metric; raises ``ConfigError`` (exit 2) naming every
    metric whose judge agrees less than ``bar``. A metric the labelled set has no verdicts for (a
    team's own judged metric) cannot be measured: it passes, and ``describe`` says so."""
    from evaluation.calibration.check import check_judge

    if not metrics:
        return []
    labelled = load_set()
    results: list[GateResult] = []
    measurable = [m for m in metrics if labelled.labelled(m)]
    missing = [m for m in measurable if stored_agreement(settings, judge_ref, m, labelled.sha256) is None]
    if missing:
        if judge_factory is None:
            raise ConfigError(
                f"the judge {judge_ref!r} was never checked on {', '.join(missing)}",
                hint=f"run `ladder judge check --judge {judge_ref}` first",
            )
        if progress is not None:
            progress.note(
                f"checking the judge {judge_ref} on {', '.join(missing)} against {labelled.name} "
                f"({len(labelled.items)} labelled items) before trusting it"
            )
        save(settings, check_judge(judge_ref, judge_factory(), labelled, missing, progress))
    for metric in metrics:
        stored = stored_agreement(settings, judge_ref, metric, labelled.sha256)
        assert stored is not None or metric not in measurable
        results.append(GateResult(metric, judge_ref, stored, bar, metric in missing))
    refused = [r for r in results if not r.ok]
    if refused:
        which = "; ".join(f"{r.metric}: agreement {r.describe()}" for r in refused)
        raise ConfigError(
            f"the judge {judge_ref!r} agrees too little with people to decide on a judged target "
            f"({which}; the bar is {bar:.2f}, a coin scores 0.50)",
            hint="use a stronger judge (`judge:` a larger pack or an openai:<model>@<url> endpoint, then "
            "`ladder judge check --judge M`), target a lexical metric (exact_match, token_f1, "
            "contains_answer), or lower `judge_min_agreement` knowing what it costs",
        )
    return results
