"""Metrics: per-item scores with n/a reasons, registered by name (see ``base``)."""

from evaluation.metrics.base import (
    BaseMetric,
    Metric,
    MetricSummary,
    Score,
    build_metric,
    build_sample,
    metric_names,
    register_metric,
    summarize,
)

__all__ = [
    "BaseMetric",
    "Metric",
    "MetricSummary",
    "Score",
    "build_metric",
    "build_sample",
    "metric_names",
    "register_metric",
    "summarize",
]
