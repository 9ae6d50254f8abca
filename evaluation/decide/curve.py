"""The learning curve: would more labelled data reach the target, and about how much?

The engine scores the best rung on the SAME dev items at a few data sizes (``curve_sizes``:
e.g. 25 / 50 / 100 % of the training data or of the few-shot pool). ``fit_curve`` fits a
least-squares line of the mean against log2(n), a fixed gain per doubling (a common, simple
learning-curve form), and finds where the line crosses the target. A metric whose scores all
lie in [0, 1] is a rate: it saturates at those bounds, so a target outside them is never
reached. The uncertainty is a paired bootstrap over items: each replicate resamples the item
indices once, recomputes every size's mean on those items, refits the line and recomputes the
crossing; a replicate whose line does not move towards the target never crosses (infinity).

Items are paired across sizes: an item left n/a (``None`` or NaN) at any size is dropped at
every size, so every mean and the line use the same items. ``describe`` says it in English or
Chinese. Pure: numpy only, no model, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.decide.config import TOO_CLOSE
from evaluation.stats import bootstrap_ci

MET, REACHES, FLAT, BEYOND, TOO_FEW = "met", "reaches", "flat", "beyond", "too_few_points"
OPS = (">=", "<=")
_BLOCK_CELLS = 2_000_000  # resample indices drawn per block: memory stays flat for big suites


@dataclass
class CurvePoint:
    n: int  # examples used (training examples, or few-shot pool size)
    scores: list[float | None]  # per dev item, aligned across points (None = n/a, dropped pairwise)
    mean: float | None = None  # filled by fit_curve, over the items scored at every size
    low: float | None = None
    high: float | None = None


@dataclass
class Curve:
    rung: str  # "finetune" | "fewshot" ...
    metric: str
    op: str  # ">=" | "<="
    target: float
    unit: str  # "training examples" | "few-shot examples"
    points: list[CurvePoint]
    slope: float | None  # change in the metric per doubling of n
    slope_low: float | None
    slope_high: float | None
    # needed*: only for "reaches" and "beyond" (None otherwise: met, flat, too few points)
    needed: int | None  # point estimate of n where the fit crosses the target (None: never)
    needed_low: int | None
    needed_high: int | None  # None: beyond the cap (or never, on some resamples)
    outcome: str  # met | reaches | flat | beyond | too_few_points
    method: str  # one line: how it was obtained
    items: int = 0  # dev items scored at every size (the ones the line is fitted on)
    confidence: float = 0.95
    resamples: int = 2000
    cap: int = TOO_CLOSE  # needing more than cap x the largest n measured: out of reach
    bounded: bool = False  # a rate: the line saturates at [0, 1]

    @property
    def largest(self) -> int:
        """The largest size with scores (0 when none has)."""
        return max((p.n for p in self.points if p.mean is not None), default=0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Curve:
        values = dict(data)
        values["points"] = [CurvePoint(**p) for p in data.get("points", [])]
        return cls(**values)


def curve_sizes(total: int, fractions: Sequence[float] = (0.25, 0.5, 1.0), minimum: int = 2) -> list[int]:
    """Distinct sizes, ascending, each at least ``minimum`` (when ``total`` allows), the last
    ``total``: ``curve_sizes(240) == [60, 120, 240]``. A total below ``minimum`` gives
    ``[total]``, one size (a curve of one point: ``too_few_points``)."""
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    if minimum < 1:
        raise ValueError(f"minimum must be >= 1, got {minimum}")
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"fractions must be in (0, 1], got {fraction}")
    # Round half up (not Python's half to even), then keep within [minimum, total].
    sizes = {min(total, max(minimum, math.floor(f * total + 0.5))) for f in fractions}
    sizes.add(total)
    return sorted(sizes)


def fit_curve(
    points: Sequence[CurvePoint],
    *,
    rung: str,
    metric: str,
    op: str,
    target: float,
    unit: str,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    cap: int = TOO_CLOSE,
    bounded: bool | None = None,
) -> Curve:
    """Fit, extrapolate with an interval, and name the outcome (see the module docstring).

    ``bounded``: the metric is a rate in [0, 1]; ``None`` infers it (every score in [0, 1]).
    The points come back sorted by ``n``, with ``mean``/``low``/``high`` filled (the inputs are
    not changed)."""
    _check(points, op, confidence, resamples, cap)
    ordered = [dataclasses.replace(p, scores=list(p.scores)) for p in sorted(points, key=lambda p: p.n)]
    matrix = np.array([[_value(s) for s in p.scores] for p in ordered], dtype=float)  # sizes x items
    scored = ~np.isnan(matrix).all(axis=1)  # sizes with at least one score
    kept = ~np.isnan(matrix[scored]).any(axis=0) if scored.any() else np.zeros(matrix.shape[1], bool)
    values = matrix[scored][:, kept].T  # items x sizes: the items scored at every such size
    if bounded is None:
        bounded = bool(values.size) and bool(((values >= 0) & (values <= 1)).all())
    _fill_points(ordered, scored, values, confidence, resamples, seed)
    sizes = np.array([p.n for p, s in zip(ordered, scored, strict=True) if s], dtype=float)
    distinct, items = len(set(sizes.tolist())), int(values.shape[0])
    curve = Curve(
        rung=rung,
        metric=metric,
        op=op,
        target=float(target),
        unit=unit,
        points=ordered,
        slope=None,
        slope_low=None,
        slope_high=None,
        needed=None,
        needed_low=None,
        needed_high=None,
        outcome=TOO_FEW,
        method=f"no fit: {distinct} size(s) with scores and {items} item(s) scored at every size; "
        "a line needs 2 of each",
        items=items,
        confidence=confidence,
        resamples=resamples,
        cap=cap,
        bounded=bounded,
    )
    if distinct < 2 or items < 2:
        return curve

    x = np.log2(sizes)
    means = values.mean(axis=0)
    slope, intercept = _fit(x, means[None, :])
    slopes, intercepts = _fit(x, _paired_means(values, resamples, seed))
    slope_low, slope_high = _percentiles(slopes, confidence, "linear")
    largest = int(sizes.max())
    curve = dataclasses.replace(
        curve,
        slope=float(slope[0]),
        slope_low=slope_low,
        slope_high=slope_high,
        method=_method(distinct, items, resamples, confidence, cap, largest, bounded),
    )
    if _holds(float(means[sizes == sizes.max()].mean()), op, target):
        return dataclasses.replace(curve, outcome=MET)
    if not (slope_low > 0 if op == ">=" else slope_high < 0):
        return dataclasses.replace(curve, outcome=FLAT)  # the interval includes 0 or points away

    needed = float(_crossing(slope, intercept, op, target, bounded, largest)[0])
    low, high = _percentiles(
        _crossing(slopes, intercepts, op, target, bounded, largest), confidence, "inverted_cdf"
    )
    limit = cap * largest
    return dataclasses.replace(
        curve,
        needed=_as_int(needed),
        needed_low=_as_int(low) if low <= limit else None,
        needed_high=_as_int(high) if high <= limit else None,
        outcome=BEYOND if needed > limit else REACHES,
    )


def _check(points: Sequence[CurvePoint], op: str, confidence: float, resamples: int, cap: int) -> None:
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples <= 0:
        raise ValueError(f"resamples must be > 0, got {resamples}")
    if cap <= 0:
        raise ValueError(f"cap must be > 0, got {cap}")
    if not points:
        raise ValueError("a curve needs at least one point")
    for point in points:
        if point.n < 1:
            raise ValueError(f"each point's n must be >= 1, got {point.n}")
    lengths = {len(p.scores) for p in points}
    if len(lengths) > 1:
        raise ValueError(f"the points' scores must be aligned by item, got lengths {sorted(lengths)}")


def _value(score: float | None) -> float:
    return math.nan if score is None else float(score)


def _holds(value: float, op: str, target: float) -> bool:
    return value >= target if op == ">=" else value <= target


def _fill_points(
    ordered: list[CurvePoint],
    scored: np.ndarray,
    values: np.ndarray,
    confidence: float,
    resamples: int,
    seed: int,
) -> None:
    """Each size's mean and bootstrap CI over the items scored at every size."""
    columns = iter(range(values.shape[1]))
    for point, has_scores in zip(ordered, scored, strict=True):
        if not has_scores:
            continue
        ci = bootstrap_ci(values[:, next(columns)].tolist(), resamples, confidence, seed)
        point.mean, point.low, point.high = ci.mean, ci.low, ci.high


def _paired_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` x sizes: every size's mean on the same resampled items per replicate."""
    rng = np.random.default_rng(seed)
    items, sizes = values.shape
    block = max(1, _BLOCK_CELLS // items)
    out = np.empty((resamples, sizes))
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        indices = rng.integers(0, items, size=(stop - start, items))
        for column in range(sizes):
            out[start:stop, column] = values[:, column][indices].mean(axis=1)
    return out


def _fit(x: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of each row of ``means`` against ``x``."""
    centred = x - x.mean()
    slope = (means - means.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)
    return slope, means.mean(axis=1) - slope * x.mean()


def _crossing(
    slope: np.ndarray, intercept: np.ndarray, op: str, target: float, bounded: bool, largest: int
) -> np.ndarray:
    """The n where each line reaches the target: infinity where it moves away from it (or stays),
    or where a rate would have to leave [0, 1]; at least ``largest + 1`` (the last size missed)."""
    towards = slope > 0 if op == ">=" else slope < 0
    out_of_range = bounded and not 0.0 <= target <= 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_n = np.where(towards, (target - intercept) / np.where(towards, slope, 1.0), np.inf)
        n = np.exp2(log_n)
    if out_of_range:
        n = np.full_like(n, np.inf)
    return np.maximum(np.ceil(n), largest + 1)


def _percentiles(values: np.ndarray, confidence: float, method: str) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha], method=method)  # type: ignore[call-overload]
    return float(low), float(high)


def _as_int(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


def _method(
    sizes: int, items: int, resamples: int, confidence: float, cap: int, largest: int, bounded: bool
) -> str:
    saturates = "; a rate: saturates at [0, 1]" if bounded else ""
    return (
        f"least-squares line of the mean vs log2(n) over {sizes} sizes ({items} items scored at every "
        f"size){saturates}; paired bootstrap over items, {resamples} resamples, {_percent(confidence)} "
        f"percentile intervals; past {cap}x the largest n ({cap * largest}) counts as out of reach"
    )


# -- words -------------------------------------------------------------------------------------

UNITS_ZH = {"training examples": "训练样本", "few-shot examples": "少样本示例"}

SENTENCES: dict[str, dict[str, str]] = {
    "en": {
        "measured": "{rung}, {metric} measured at {sizes} {unit}: {means}.",
        MET: "At {largest} {unit} the mean {metric} ({last}) already meets {op} {target}: nothing to "
        "extrapolate.",
        FLAT: "The change per doubling of {unit} is {slope} (CI [{slope_low}, {slope_high}]), not clearly "
        "towards {op} {target}: more data will not help, as far as this curve shows.",
        BEYOND: "The fitted line ({slope} per doubling) reaches {metric} {op} {target} only past {cap}x the "
        "largest size measured ({limit} {unit}; about {needed} on the line): more data alone is unlikely "
        "to reach it.",
        BEYOND + "_never": "The fitted line ({slope} per doubling) does not reach {metric} {op} {target} "
        "within {cap}x the largest size measured ({limit} {unit}): more data alone is unlikely to reach it.",
        REACHES: "If the change of {slope} per doubling holds, at about {needed} {unit} ({confidence} "
        "interval {interval}) {rung} is likely to reach {metric} {op} {target}.",
        TOO_FEW: "Fewer than 2 sizes (or items) with scores: no curve to fit.",
        "above": "more than {limit}",
        "method": "Method: a straight line of the mean against log2 of the {unit}, with a paired bootstrap "
        "over the {items} items ({resamples} resamples, {confidence} intervals).",
    },
    "zh": {
        "measured": "{rung} 在 {sizes} 个{unit}上测得的 {metric}：{means}。",
        MET: "在 {largest} 个{unit}时，{metric} 的均值（{last}）已满足 {op} {target}：无需外推。",
        FLAT: "{unit}每增加一倍，指标变化 {slope}（置信区间 [{slope_low}, {slope_high}]），看不出朝 "
        "{op} {target} 方向的变化：就这条曲线而言，更多数据无济于事。",
        BEYOND: "拟合直线（每增加一倍变化 {slope}）要超过已测最大规模的 {cap} 倍（{limit} 个{unit}；"
        "按直线约 {needed} 个）才达到 {metric} {op} {target}：仅靠更多数据不太可能达到。",
        BEYOND + "_never": "在已测最大规模的 {cap} 倍（{limit} 个{unit}）以内，拟合直线（每增加一倍变化 "
        "{slope}）达不到 {metric} {op} {target}：仅靠更多数据不太可能达到。",
        REACHES: "若{unit}每增加一倍带来 {slope} 的变化持续下去，约 {needed} 个{unit}（{confidence} 区间 "
        "{interval}）时 {rung} 有望达到 {metric} {op} {target}。",
        TOO_FEW: "有分数的数据规模（或题目）少于 2 个：无法拟合曲线。",
        "above": "超过 {limit}",
        "method": "方法：均值对{unit}数 log2 的直线拟合，按 {items} 道题配对自助法（{resamples} 次重抽样，"
        "{confidence} 区间）。",
    },
}


def describe(curve: Curve, lang: str = "en") -> list[str]:
    """The sizes measured with their means, the outcome, and the method: English or Chinese."""
    words = SENTENCES.get(lang, SENTENCES["en"])
    unit = UNITS_ZH.get(curve.unit, curve.unit) if lang == "zh" else curve.unit
    measured = [p for p in curve.points if p.mean is not None]
    limit = curve.cap * curve.largest
    params = {
        "rung": curve.rung,
        "metric": curve.metric,
        "op": curve.op,
        "target": f"{curve.target:.3f}".rstrip("0").rstrip("."),
        "unit": unit,
        "sizes": " / ".join(str(p.n) for p in measured) or "-",
        "means": ("、" if lang == "zh" else ", ").join(_num(p.mean) for p in measured) or "-",
        "largest": str(curve.largest),
        "last": _num(measured[-1].mean) if measured else "n/a",
        "slope": _signed(curve.slope),
        "slope_low": _signed(curve.slope_low),
        "slope_high": _signed(curve.slope_high),
        "needed": str(curve.needed),
        "cap": str(curve.cap),
        "limit": str(limit),
        "items": str(curve.items),
        "resamples": str(curve.resamples),
        "confidence": _percent(curve.confidence),
    }
    high = str(curve.needed_high) if curve.needed_high is not None else words["above"].format(limit=limit)
    params["interval"] = f"{curve.needed_low if curve.needed_low is not None else 'n/a'}–{high}"
    outcome = curve.outcome
    if outcome == BEYOND and curve.needed is None:
        outcome = BEYOND + "_never"
    sentences = [words["measured"].format(**params)] if measured else []
    sentences.append(words[outcome].format(**params))
    if outcome != TOO_FEW:
        sentences.append(words["method"].format(**params))
    return sentences


def _percent(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"
