"""Score the labelled set with each judged metric and measure the agreement with the labels.

The judge is the same ``Judge`` the evaluation runner uses (its prompts, its parsing, its
constrained replies), so the agreement measured here is the agreement of the scores a report
shows. Items that give a metric the same inputs (the context metrics do not read the answer)
are judged once. A judge that cannot be reached stops the check with the backend's error, as
it stops an evaluation run; a reply that cannot be parsed is an n/a, which costs agreement.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import ConfigError
from assistant.progress import NullProgress, Progress
from evaluation.calibration.agreement import Agreement, agreement
from evaluation.calibration.data import LabelledSet

JUDGED_METRICS = (
    "faithfulness",
    "answer_relevancy",
    "context_precision",
    "context_recall",
    "answer_correctness",
)


@dataclass
class ItemVerdict:
    item: str
    label: float
    score: float | None
    reason: str = ""


@dataclass
class MetricCheck:
    metric: str
    agreement: Agreement
    items: list[ItemVerdict] = field(default_factory=list)
    wall_s: float = 0.0
    # The same measure on each language's items (a judge can be fair in English and lenient in
    # Chinese); a language with no differently labelled pair has none.
    by_lang: dict[str, Agreement] = field(default_factory=dict)


@dataclass
class JudgeCheck:
    judge: str  # the model reference the check was asked for
    model_id: str  # what the backend calls itself
    set_name: str
    set_sha256: str
    created: str
    metrics: dict[str, MetricCheck] = field(default_factory=dict)
    judge_calls: int = 0
    wall_s: float = 0.0


def _key(metric: Any, sample: dict[str, Any]) -> str:
    return json.dumps({f: sample.get(f) for f in metric.requires}, ensure_ascii=False, sort_keys=True)


def check_metric(
    name: str, labelled: LabelledSet, judge: Any, progress: Progress | None = None, batch: int = 0
) -> MetricCheck:
    """Judge every item labelled for ``name`` and measure the agreement."""
    from evaluation.metrics import build_metric

    metric: Any = build_metric(name)
    if not getattr(metric, "needs_judge", False):
        raise ConfigError(
            f"{name!r} is not a judged metric", hint=f"judged metrics: {', '.join(JUDGED_METRICS)}"
        )
    items = labelled.labelled(name)
    unique: dict[str, dict[str, Any]] = {}
    for item in items:
        unique.setdefault(_key(metric, item.sample), item.sample)
    keys = list(unique)
    progress = progress or NullProgress()
    progress.start(f"judging {name}", total=len(keys))
    started = time.perf_counter()
    scores: dict[str, Any] = {}
    step = max(1, batch or getattr(judge, "concurrency", 1))
    for start in range(0, len(keys), step):
        chunk = keys[start : start + step]
        for key, score in zip(chunk, metric.score_many([unique[k] for k in chunk], judge), strict=True):
            scores[key] = score
        progress.advance(len(chunk))
    verdicts = []
    langs: dict[str, list[ItemVerdict]] = {}
    for item in items:
        score = scores[_key(metric, item.sample)]
        label = item.labels[name]
        assert label is not None
        verdicts.append(ItemVerdict(item.id, label, score.value, score.reason or ""))
        langs.setdefault(item.lang or "?", []).append(verdicts[-1])
    measured = agreement([v.label for v in verdicts], [v.score for v in verdicts])
    by_lang = {
        lang: agreement([v.label for v in group], [v.score for v in group])
        for lang, group in sorted(langs.items())
    }
    return MetricCheck(name, measured, verdicts, time.perf_counter() - started, by_lang)


def check_judge(
    judge_ref: str,
    judge: Any,
    labelled: LabelledSet,
    metrics: Sequence[str] = (),
    progress: Progress | None = None,
) -> JudgeCheck:
    """Check ``judge`` on ``labelled`` for ``metrics`` (default: every judged metric the set labels)."""
    from datetime import UTC, datetime

    wanted = list(metrics) or [m for m in labelled.metrics() if m in JUDGED_METRICS]
    for name in wanted:
        if not labelled.labelled(name):
            raise ConfigError(f"the labelled set {labelled.name} has no verdicts for {name!r}")
    started = time.perf_counter()
    calls_before = _calls(judge)
    result = JudgeCheck(
        judge_ref,
        str(getattr(judge, "model_id", judge_ref)),
        labelled.name,
        labelled.sha256,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for name in wanted:
        result.metrics[name] = check_metric(name, labelled, judge, progress)
    result.judge_calls = _calls(judge) - calls_before
    result.wall_s = time.perf_counter() - started
    return result


def _calls(judge: Any) -> int:
    usage = getattr(judge, "usage", None)
    return int(getattr(usage, "calls", 0) or 0)
