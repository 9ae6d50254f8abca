"""Measuring the learning curve of the rung that learns from examples, when nothing meets.

The fine-tuning rung (when it was evaluated) or else the few-shot rung is scored again with
less of its data, on the same dev items as its verdict: the few-shot pool or the prepared
training data cut to each of ``curve.curve_sizes`` (25 / 50 / 100 %; nested, seeded subsets,
so a smaller size is part of a larger one). The largest size is the rung as evaluated, free.
``curve.fit_curve`` turns the points into "about N examples" with an interval, or "more data
will not help".

A fine-tune's curve trains one adapter per smaller size with the decision's recipe: about
0.75x of the full training again. It runs only when that fits ``finetune.max_minutes`` (from
the measured training time); otherwise the report says it was not measured and why.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluation.aggregate import values_of
from evaluation.decide.config import DecisionConfig
from evaluation.decide.curve import Curve, CurvePoint, curve_sizes, fit_curve
from evaluation.decide.result import EVALUATED, Readiness, RungResult
from evaluation.results import ItemRecord, RunResult

SEED = 0
# Scores the rung on the dev items ``ids`` with ``strategy`` and ``model``; returns the run.
Evaluate = Callable[[dict[str, Any], str, list[str]], RunResult]


def curve_rung(rungs: Sequence[RungResult]) -> RungResult | None:
    """The rung whose data could grow: the fine-tune if it was evaluated, else few-shot."""
    done = {r.strategy: r for r in rungs if r.state == EVALUATED and r.dev is not None}
    return done.get("finetune") or done.get("fewshot")


def nested_subsets(rows: Sequence[Any], sizes: Sequence[int], seed: int = SEED) -> dict[int, list[Any]]:
    """``size -> rows``: one seeded order, each size its first ``size`` rows (nested)."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    return {n: order[:n] for n in sizes}


def _point(n: int, records: Sequence[ItemRecord], ids: Sequence[str], metric: str) -> CurvePoint:
    by_id = {r.item_id: r for r in records}
    kept = [by_id[i] for i in ids if i in by_id]
    values = values_of(kept, metric)
    scores: list[float | None] = [None] * len(ids)
    position = {i: k for k, i in enumerate(ids)}
    for record, value in zip(kept, values, strict=True):
        scores[position[record.item_id]] = value
    return CurvePoint(n, scores)


def _fit(config: DecisionConfig, rung: RungResult, unit: str, points: list[CurvePoint]) -> Curve:
    target = config.targets[0]
    return fit_curve(
        points,
        rung=rung.label,
        metric=target.metric,
        op=target.op or ">=",
        target=target.value,
        unit=unit,
        confidence=config.confidence,
    )


def fewshot_pool(strategy: dict[str, Any]) -> list[Any]:
    """The examples a few-shot strategy config draws from (inline and from its file)."""
    from assistant.strategies.prompt import FewShotConfig, load_examples

    known = set(FewShotConfig.__dataclass_fields__)
    return load_examples(FewShotConfig(**{k: v for k, v in strategy.items() if k in known}))


def fewshot_curve(
    config: DecisionConfig,
    rung: RungResult,
    records: Sequence[ItemRecord],
    evaluate: Evaluate,
    model: str,
    folder: Path,
) -> Curve | None:
    """Few-shot with 25 / 50 % of its pool (written to ``folder``), on the rung's dev items."""
    pool = fewshot_pool(rung.config)
    sizes = curve_sizes(len(pool), minimum=1)
    if len(sizes) < 2:
        return None
    ids = [r.item_id for r in records]
    metric = config.targets[0].metric
    folder.mkdir(parents=True, exist_ok=True)
    points = []
    for n, subset in nested_subsets(pool, sizes).items():
        if n == len(pool):
            points.append(_point(n, records, ids, metric))
            continue
        path = folder / f"pool_{n}.jsonl"
        rows = [{"user_input": e.user_input, "reference": e.reference} for e in subset]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        strategy = {**rung.config, "examples": [], "examples_file": str(path)}
        run = evaluate(strategy, model, ids)
        points.append(_point(n, run.records_for(run.strategies[0].strategy), ids, metric))
    return _fit(config, rung, "few-shot examples", points)


def training_minutes(ready: Readiness | None) -> float | None:
    """The measured (else estimated) minutes of the decision's training run on this machine."""
    if ready is None:
        return None
    for row in ready.estimates:
        if row.get("where") == "this machine" and row.get("hours") is not None:
            return 60 * float(row["hours"])
    return None


def subset_data(data: Path, sizes: Sequence[int], folder: Path) -> dict[int, Path]:
    """Data folders with nested subsets of ``data``'s train.jsonl (val.jsonl as it is)."""
    rows = [line for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    out = {}
    for n, subset in nested_subsets(rows, [s for s in sizes if s < len(rows)]).items():
        target = folder / f"data_{n}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        (target / "train.jsonl").write_text("\n".join(subset) + "\n", encoding="utf-8")
        if (data / "val.jsonl").is_file():
            shutil.copyfile(data / "val.jsonl", target / "val.jsonl")
        out[n] = target
    return out


def finetune_curve(
    config: DecisionConfig,
    rung: RungResult,
    records: Sequence[ItemRecord],
    data: Path,
    train: Callable[[Path, str], str],
    evaluate: Evaluate,
    folder: Path,
) -> Curve | None:
    """The fine-tune trained again on 25 / 50 % of the prepared data (subsets written under
    ``folder``; ``train(data, name)`` returns the model reference), each scored on the rung's
    dev items."""
    total = sum(1 for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    sizes = curve_sizes(total, minimum=8)
    if len(sizes) < 2:
        return None
    ids = [r.item_id for r in records]
    metric = config.targets[0].metric
    points = []
    folders = subset_data(data, sizes, folder)
    for n in sizes:
        if n == total:
            points.append(_point(n, records, ids, metric))
            continue
        model = train(folders[n], f"curve{n}")
        run = evaluate(rung.config, model, ids)
        points.append(_point(n, run.records_for(run.strategies[0].strategy), ids, metric))
    return _fit(config, rung, "training examples", points)
