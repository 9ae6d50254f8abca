"""A decision's judged targets are trusted only as far as their judge agrees with people.

One judge scores every rung (the decision's ``judge``, else its base ``model``): rungs scored
by different judges, or by the very model being evaluated, would not be comparable. Before the
rungs run, ``evaluation.calibration.gate`` looks the judge's stored agreement up for each judged
target (checking it on the labelled set first when it never was) and refuses a judge below
``judge_min_agreement``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.progress import Progress
    from assistant.settings import Settings
    from evaluation.calibration.gate import GateResult
    from evaluation.decide.config import DecisionConfig


def decision_judge(config: DecisionConfig, settings: Settings) -> str:
    """The judge of every rung's judged metrics."""
    return config.judge or config.model or settings.model


def judged_target_metrics(config: DecisionConfig, metrics: Sequence[Any]) -> list[str]:
    """The targets' metrics (of ``metrics``, the dev suite's) that need a judge."""
    judged = {m.label for m in metrics if getattr(m, "needs_judge", False)}
    return [t.metric for t in config.targets if t.metric in judged]


def gate_judged_targets(
    config: DecisionConfig,
    settings: Settings,
    metrics: Sequence[Any],
    judge: Any = None,
    progress: Progress | None = None,
) -> list[GateResult]:
    """The agreement of the decision's judge on each judged target; ``ConfigError`` when one is
    below the bar. ``judge``: an injected judge (tests, the UI) to check with instead of loading
    the model. Nothing to check (no judged target, ``no_judge``, a bar of 0): ``[]``."""
    from evaluation.calibration.gate import check_judged_targets

    targets = judged_target_metrics(config, metrics)
    if not targets or config.no_judge or config.judge_min_agreement <= 0:
        return []
    judge_ref = decision_judge(config, settings)

    def build() -> Any:
        if judge is not None:
            return judge
        from evaluation.metrics.judge import Judge

        return Judge.from_settings(judge_ref, settings)

    factory: Callable[[], Any] = build
    return check_judged_targets(settings, judge_ref, targets, config.judge_min_agreement, factory, progress)
