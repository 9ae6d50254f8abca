"""The learning curve: fit, extrapolate with a paired bootstrap interval, and say it in words."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np
import pytest

from evaluation.decide.curve import (
    BEYOND,
    FLAT,
    MET,
    REACHES,
    TOO_FEW,
    Curve,
    CurvePoint,
    curve_sizes,
    describe,
    fit_curve,
)

SIZES = (25, 50, 100)


def nested(rates: tuple[float, ...], items: int = 60, seed: int = 0) -> list[list[float]]:
    """Per-item 0/1 scores with exactly ``rate`` right at each size; an item right at one size is
    right at every larger one (each item has a fixed difficulty), as a model that learns would."""
    difficulty = (np.arange(items) + 0.5) / items
    np.random.default_rng(seed).shuffle(difficulty)
    return [[float(d < rate) for d in difficulty] for rate in rates]


def independent(rates: tuple[float, ...], items: int = 60, seed: int = 0) -> list[list[float]]:
    """Exactly ``rate`` right at each size, which items shuffled independently: noise only."""
    rng = np.random.default_rng(seed)
    out: list[list[float]] = []
    for rate in rates:
        row = [1.0] * round(rate * items) + [0.0] * (items - round(rate * items))
        rng.shuffle(row)
        out.append(row)
    return out


def points(rows: Sequence[Sequence[float | None]], sizes: tuple[int, ...] = SIZES) -> list[CurvePoint]:
    return [CurvePoint(n, list(row)) for n, row in zip(sizes, rows, strict=True)]


def fit(pts: list[CurvePoint], target: float, op: str = ">=", **kwargs: object) -> Curve:
    return fit_curve(
        pts,
        rung="finetune",
        metric="exact_match",
        op=op,
        target=target,
        unit="training examples",
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_rising_curve_reaches_the_target_at_about_two_hundred() -> None:
    curve = fit(points(nested((0.4, 0.55, 0.7))), 0.85)
    assert curve.outcome == REACHES
    # 0.15 per doubling from 0.7 at 100: one more doubling, n ~ 200.
    assert curve.slope == pytest.approx(0.15)
    assert curve.slope_low is not None and curve.slope_high is not None
    assert 0 < curve.slope_low < 0.15 < curve.slope_high
    assert curve.needed is not None and curve.needed_low is not None and curve.needed_high is not None
    assert 190 <= curve.needed <= 210
    assert 100 < curve.needed_low <= curve.needed <= curve.needed_high <= 25 * 100
    assert [p.mean for p in curve.points] == pytest.approx([0.4, 0.55, 0.7])
    for point in curve.points:
        assert point.low is not None and point.high is not None
        assert point.low < point.mean < point.high  # type: ignore[operator]
    assert curve.items == 60 and curve.bounded


def test_the_crossing_is_at_least_one_past_the_largest_size() -> None:
    # The line through 0.4 / 0.7 / 0.7 is at 0.75 by n=100 while the last point (0.7) misses 0.72.
    curve = fit(points(nested((0.4, 0.7, 0.7), items=200)), 0.72)
    assert curve.outcome == REACHES
    assert curve.needed == 101


def test_a_flat_curve_is_flat() -> None:
    curve = fit(points(independent((0.6, 0.6, 0.61))), 0.8)
    assert curve.outcome == FLAT
    assert curve.slope_low is not None and curve.slope_high is not None
    assert curve.slope_low <= 0 <= curve.slope_high
    assert curve.needed is None and curve.needed_low is None and curve.needed_high is None


def test_a_falling_curve_is_flat_too() -> None:
    curve = fit(points(nested((0.7, 0.55, 0.4))), 0.8)
    assert curve.outcome == FLAT
    assert curve.slope_high is not None and curve.slope_high < 0


def test_a_shallow_curve_needing_more_than_25x_is_beyond() -> None:
    curve = fit(points(nested((0.5, 0.52, 0.54), items=400)), 0.9)
    assert curve.slope_low is not None and curve.slope_low > 0  # it rises, clearly: not flat
    assert curve.outcome == BEYOND
    assert curve.needed is not None and curve.needed > 25 * 100
    assert curve.needed_high is None  # beyond the cap
    # The same curve with a target it reaches within the cap: 0.6 is three doublings away.
    assert fit(points(nested((0.5, 0.52, 0.54), items=400)), 0.6).outcome == REACHES


def test_a_rate_never_reaches_a_target_above_one() -> None:
    rows = nested((0.4, 0.55, 0.7))
    curve = fit(points(rows), 1.05)
    assert curve.outcome == BEYOND and curve.needed is None and curve.needed_high is None
    # Unbounded (not a rate), the same line crosses 1.05 at about 100 * 2^(0.35 / 0.15) ~ 504.
    unbounded = fit(points(rows), 1.05, bounded=False)
    assert unbounded.outcome == REACHES and unbounded.needed is not None
    assert 490 <= unbounded.needed <= 520


def test_scores_outside_zero_one_are_not_a_rate() -> None:
    rows = [[2 * s for s in row] for row in nested((0.4, 0.55, 0.7))]
    curve = fit(points(rows), 2.1)
    assert not curve.bounded and curve.outcome == REACHES


def test_the_last_point_meeting_the_target_is_met() -> None:
    curve = fit(points(nested((0.4, 0.55, 0.7))), 0.7)
    assert curve.outcome == MET
    assert curve.needed is None
    assert curve.slope == pytest.approx(0.15)


def test_one_size_is_too_few_points() -> None:
    curve = fit(points(nested((0.7,)), sizes=(100,)), 0.9)
    assert curve.outcome == TOO_FEW
    assert curve.slope is None and curve.needed is None
    assert curve.points[0].mean == pytest.approx(0.7)
    # Two points of the same size, or a size with no score at all, do not make a curve either.
    rows = nested((0.5, 0.6))
    assert fit(points(rows, sizes=(100, 100)), 0.9).outcome == TOO_FEW
    empty: list[float | None] = [None] * 60
    assert fit(points([empty, rows[1]], sizes=(25, 100)), 0.9).outcome == TOO_FEW


def test_lower_is_better_is_the_mirror_image() -> None:
    rows = nested((0.4, 0.55, 0.7))
    errors = [[1 - s for s in row] for row in rows]
    higher = fit(points(rows), 0.85)
    lower = fit(points(errors), 0.15, op="<=")
    assert lower.outcome == REACHES
    assert lower.slope == pytest.approx(-0.15)
    assert lower.needed == higher.needed
    assert lower.needed_low == pytest.approx(higher.needed_low, abs=1)
    assert lower.needed_high == pytest.approx(higher.needed_high, abs=1)
    # Mirrored too: a falling error rate with a target already met, and a rising one (flat).
    assert fit(points(errors), 0.3, op="<=").outcome == MET
    assert fit(points(errors[::-1]), 0.15, op="<=").outcome == FLAT


def test_items_left_n_a_at_any_size_are_dropped_at_every_size() -> None:
    rows = nested((0.4, 0.55, 0.7))
    full = fit(points(rows), 0.85)
    # Two more items, right at every size they were scored at: item 60 is n/a at 25, item 61 at
    # 100, so both leave every size and the means stay those of the 60 paired items.
    with_holes: list[list[float | None]] = [[*row, 1.0, 1.0] for row in rows]
    with_holes[0][-2] = None
    with_holes[2][-1] = float("nan")
    curve = fit(points(with_holes), 0.85)
    assert curve.items == 60
    assert [p.mean for p in curve.points] == [p.mean for p in full.points]
    assert curve.needed == full.needed and curve.slope == full.slope


def test_fit_sorts_the_points_and_leaves_the_inputs_alone() -> None:
    pts = points(nested((0.4, 0.55, 0.7)))
    curve = fit(pts[::-1], 0.85)
    assert [p.n for p in curve.points] == [25, 50, 100]
    assert all(p.mean is None for p in pts)
    assert curve.needed == fit(pts, 0.85).needed


def test_bad_inputs_raise() -> None:
    rows = nested((0.4, 0.55, 0.7))
    with pytest.raises(ValueError, match="aligned"):
        fit(points([rows[0], rows[1][:-1]], sizes=(25, 50)), 0.85)
    with pytest.raises(ValueError, match="op"):
        fit(points(rows), 0.85, op=">")
    with pytest.raises(ValueError, match="n must be"):
        fit(points(rows[:2], sizes=(0, 50)), 0.85)
    with pytest.raises(ValueError, match="confidence"):
        fit(points(rows), 0.85, confidence=1.0)


def test_round_trip_through_json_is_exact() -> None:
    for target in (0.85, 0.9, 0.7, 1.05):
        curve = fit(points(nested((0.4, 0.55, 0.7))), target)
        again = Curve.from_dict(json.loads(json.dumps(curve.to_dict())))
        assert again == curve
    lone = fit([CurvePoint(100, [1.0, None, 0.0])], 0.9)
    assert Curve.from_dict(json.loads(json.dumps(lone.to_dict()))) == lone


def test_the_same_seed_gives_the_same_curve_and_another_seed_another_interval() -> None:
    rows = independent((0.4, 0.55, 0.7), seed=3)
    a, b = fit(points(rows), 0.85, seed=5), fit(points(rows), 0.85, seed=5)
    assert a == b
    c = fit(points(rows), 0.85, seed=6)
    assert (c.slope_low, c.slope_high, c.needed_low, c.needed_high) != (
        a.slope_low,
        a.slope_high,
        a.needed_low,
        a.needed_high,
    )
    assert c.slope == a.slope and c.needed == a.needed  # the fit itself does not resample


def test_a_wider_confidence_gives_a_wider_interval() -> None:
    rows = nested((0.4, 0.55, 0.7))
    narrow, wide = fit(points(rows), 0.85, confidence=0.8), fit(points(rows), 0.85, confidence=0.99)
    assert wide.needed_low <= narrow.needed_low  # type: ignore[operator]
    assert wide.needed_high >= narrow.needed_high  # type: ignore[operator]
    assert (wide.needed_low, wide.needed_high) != (narrow.needed_low, narrow.needed_high)


@pytest.mark.parametrize(
    ("total", "expected"),
    [(240, [60, 120, 240]), (3, [2, 3]), (1, [1]), (2, [2]), (4, [2, 4]), (10, [3, 5, 10])],
)
def test_curve_sizes(total: int, expected: list[int]) -> None:
    assert curve_sizes(total) == expected


def test_curve_sizes_collapse_duplicates_and_always_end_at_the_total() -> None:
    assert curve_sizes(100, fractions=(0.5, 0.5, 0.25)) == [25, 50, 100]
    assert curve_sizes(8, fractions=(0.1, 0.2), minimum=2) == [2, 8]
    assert curve_sizes(5, fractions=(0.25,), minimum=1) == [1, 5]
    with pytest.raises(ValueError):
        curve_sizes(0)
    with pytest.raises(ValueError):
        curve_sizes(10, fractions=(0.0, 1.0))


def test_describe_says_the_points_the_outcome_and_the_method() -> None:
    curve = fit(points(nested((0.4, 0.55, 0.7)), sizes=(60, 120, 240)), 0.85)
    assert curve.needed is not None
    en, zh = describe(curve, "en"), describe(curve, "zh")
    assert len(en) == len(zh) == 3 and all(en) and all(zh)
    assert en[0] == "finetune, exact_match measured at 60 / 120 / 240 training examples: 0.400, 0.550, 0.700."
    for text in (" ".join(en), " ".join(zh)):
        assert str(curve.needed) in text
        assert f"{curve.needed_low}–{curve.needed_high}" in text
        assert "0.85" in text and "+0.150" in text
    assert "likely to reach exact_match >= 0.85" in en[1]
    assert "训练样本" in zh[0] and "有望达到" in zh[1]


@pytest.mark.parametrize(
    ("rates", "target", "items", "en_words", "zh_words"),
    [
        ((0.6, 0.6, 0.61), 0.8, 60, "more data will not help, as far as this curve shows", "无济于事"),
        ((0.5, 0.52, 0.54), 0.9, 400, "only past 25x the largest size measured (2500", "不太可能达到"),
        ((0.4, 0.55, 0.7), 1.05, 60, "does not reach exact_match >= 1.05 within 25x", "达不到"),
        ((0.4, 0.55, 0.7), 0.7, 60, "(0.700) already meets >= 0.7: nothing to extrapolate", "无需外推"),
    ],
)
def test_describe_each_outcome(
    rates: tuple[float, ...], target: float, items: int, en_words: str, zh_words: str
) -> None:
    rows = independent(rates, items) if rates[0] == rates[1] else nested(rates, items)
    curve = fit(points(rows), target)
    en, zh = describe(curve, "en"), describe(curve, "zh")
    assert en_words in " ".join(en)
    assert zh_words in " ".join(zh)
    if curve.outcome == BEYOND and curve.needed is not None:
        assert str(curve.needed) in " ".join(en) and str(curve.needed) in " ".join(zh)


def test_describe_too_few_points_says_there_is_no_curve() -> None:
    curve = fit(points(nested((0.7,)), sizes=(100,)), 0.9)
    en, zh = describe(curve, "en"), describe(curve, "zh")
    assert en == [
        "finetune, exact_match measured at 100 training examples: 0.700.",
        "Fewer than 2 sizes (or items) with scores: no curve to fit.",
    ]
    assert len(zh) == 2 and "无法拟合" in zh[1]


def test_few_shot_unit_in_chinese() -> None:
    curve = dataclasses.replace(fit(points(nested((0.4, 0.55, 0.7))), 0.85), unit="few-shot examples")
    assert "少样本示例" in describe(curve, "zh")[1]
    assert "few-shot examples" in describe(curve, "en")[1]
