"""Uncertainty for suite scores: bootstrap CIs, the paired bootstrap, McNemar's exact test.

Inputs are per-item values where ``None`` or NaN means n/a. A mean drops n/a values; a
paired comparison drops every pair where either side is n/a and reports the ``n`` it used.
Tiny samples do not raise: with n = 0 every number is ``None``; with n = 1 the mean is the
value but a CI is ``None`` (one value says nothing about spread).

Bootstraps are seeded (the same inputs and seed give the same interval) and vectorised:
resample indices are drawn in blocks of at most ~2M so memory stays flat for big suites.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

_BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class MeanCI:
    mean: float | None
    low: float | None
    high: float | None
    n: int
    n_na: int
    confidence: float


@dataclass(frozen=True)
class PairedDiff:
    """``diff`` = mean(a) - mean(b) over the pairs where both are scored."""

    diff: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    n_dropped: int
    confidence: float


@dataclass(frozen=True)
class McNemar:
    """``a_only``: items a got right and b wrong; ``b_only`` the reverse."""

    a_only: int
    b_only: int
    n: int
    n_dropped: int
    p_value: float


def _is_na(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples <= 0:
        raise ValueError(f"n_resamples must be > 0, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _resampled_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``n_resamples`` bootstrap means of ``values``, drawn in memory-bounded blocks."""
    rng = np.random.default_rng(seed)
    n = len(values)
    block = max(1, _BLOCK_CELLS // n)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        indices = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[indices].mean(axis=1)
    return out


def _interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float | None], n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> MeanCI:
    """The mean and its percentile bootstrap CI; n/a values are dropped and counted."""
    _check(n_resamples, confidence)
    kept = np.array([v for v in values if not _is_na(v)], dtype=float)
    n, n_na = len(kept), len(values) - len(kept)
    if n == 0:
        return MeanCI(None, None, None, 0, n_na, confidence)
    mean = float(kept.mean())
    if n == 1:
        return MeanCI(mean, None, None, 1, n_na, confidence)
    low, high = _interval(_resampled_means(kept, n_resamples, seed), confidence)
    return MeanCI(mean, low, high, n, n_na, confidence)


def _pairs(a: Sequence[float | None], b: Sequence[float | None]) -> Iterator[tuple[float, float]]:
    if len(a) != len(b):
        raise ValueError(f"paired inputs differ in length: {len(a)} vs {len(b)}")
    for x, y in zip(a, b, strict=True):
        if not _is_na(x) and not _is_na(y):
            yield float(x), float(y)  # type: ignore[arg-type]


def paired_bootstrap(
    a: Sequence[float | None],
    b: Sequence[float | None],
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDiff:
    """mean(a) - mean(b) on the same items: a percentile CI and a two-sided p-value.

    The p-value tests "no difference" by shifting the bootstrap distribution of the mean
    difference to zero (Efron & Tibshirani, ch. 16): p = (1 + #{|d* - d| >= |d|}) / (1 + B).
    """
    _check(n_resamples, confidence)
    pairs = list(_pairs(a, b))
    n, dropped = len(pairs), len(a) - len(pairs)
    if n == 0:
        return PairedDiff(None, None, None, None, 0, dropped, confidence)
    diffs = np.array([x - y for x, y in pairs])
    diff = float(diffs.mean())
    if n == 1:
        return PairedDiff(diff, None, None, None, 1, dropped, confidence)
    means = _resampled_means(diffs, n_resamples, seed)
    low, high = _interval(means, confidence)
    # A tolerance so a zero observed difference never counts as "more extreme" than itself by rounding.
    extreme = int(np.count_nonzero(np.abs(means - diff) >= abs(diff) - 1e-12))
    p_value = min(1.0, (1 + extreme) / (1 + n_resamples))
    return PairedDiff(diff, low, high, p_value, n, dropped, confidence)


Outcome = float | bool | None


def mcnemar_exact(a_correct: Sequence[Outcome], b_correct: Sequence[Outcome]) -> McNemar:
    """McNemar's exact test for paired 0/1 outcomes: two-sided binomial(0.5) on discordant pairs."""
    pairs = list(_pairs(a_correct, b_correct))
    for x, y in pairs:
        if x not in (0.0, 1.0) or y not in (0.0, 1.0):
            raise ValueError(f"McNemar needs 0/1 outcomes, got {x!r} and {y!r}")
    a_only = sum(1 for x, y in pairs if x == 1.0 and y == 0.0)
    b_only = sum(1 for x, y in pairs if x == 0.0 and y == 1.0)
    discordant = a_only + b_only
    if discordant == 0:
        p_value = 1.0
    else:
        # Exact integers: no float underflow for thousands of discordant pairs.
        tail = sum(math.comb(discordant, i) for i in range(min(a_only, b_only) + 1))
        p_value = min(1.0, 2 * tail / 2**discordant)
    return McNemar(a_only, b_only, len(pairs), len(a_correct) - len(pairs), p_value)
