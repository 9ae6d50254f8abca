"""A suite's metrics and thresholds, built from its spec and checked before any data is read:
a metric that does not exist, does not apply to the suite's kind or is listed twice, and a
threshold for a metric the suite lacks or outside the metric's range, each name their line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from evaluation.metrics.base import Metric, build_metric
from evaluation.suites.errors import SuiteError


def suite_metrics(
    kind: str,
    entries: list[Any],
    thresholds: dict[str, float],
    file: Path | None,
    lines: dict[tuple[Any, ...], int] | None = None,
) -> list[Metric]:
    """Build a suite's metrics (``entries``: names or ``{name: {options}}``) and check its
    thresholds; unknown names, bad options and bad thresholds are ``SuiteError``s at their
    line of ``file`` (``lines``: YAML key path -> line)."""
    lines = lines or {}
    built: dict[str, Metric] = {}
    for index, entry in enumerate(entries):
        line = lines.get(("metrics", index))
        name: Any
        options: Any
        if isinstance(entry, str):
            name, options = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            name, options = next(iter(entry.items()))
            options = options or {}
        else:
            name, options = None, None
        if not isinstance(name, str) or not isinstance(options, dict):
            raise SuiteError(
                f"bad metric entry {entry!r}",
                file=file,
                line=line,
                hint="a metric name, or {name: {option: value}}",
            )
        try:
            metric = build_metric(name, **options)
        except ConfigError as exc:
            raise SuiteError(f"unknown metric {name!r}", file=file, line=line, hint=exc.hint) from None
        except (TypeError, ValueError) as exc:
            raise SuiteError(f"metric {name!r}: {exc}", file=file, line=line) from None
        if kind not in metric.kinds:
            raise SuiteError(f"metric {name!r} does not apply to {kind} suites", file=file, line=line)
        if metric.label in built:
            raise SuiteError(f"metric {metric.label!r} is listed twice", file=file, line=line)
        built[metric.label] = metric
    for label, target in thresholds.items():
        line = lines.get(("thresholds", label))
        if label not in built:
            raise SuiteError(
                f"threshold for {label!r}, which is not among the suite's metrics",
                file=file,
                line=line,
                hint=f"metrics: {', '.join(built)}",
            )
        bounds = built[label].bounds
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise SuiteError(
                f"threshold for {label!r} must be a number, got {target!r}", file=file, line=line
            )
        if bounds is not None and not bounds[0] <= target <= bounds[1]:
            raise SuiteError(
                f"threshold {target} for {label!r} is outside {bounds[0]:g}..{bounds[1]:g}",
                file=file,
                line=line,
            )
    return list(built.values())


__all__ = ["suite_metrics"]
