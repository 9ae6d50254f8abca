"""Bootstrap CIs, the paired bootstrap and McNemar's exact test, against known values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from evaluation.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap


def test_bootstrap_ci_covers_the_true_mean_and_is_reproducible() -> None:
    rng = np.random.default_rng(42)
    sample = list(rng.binomial(1, 0.7, size=400).astype(float))
    ci = bootstrap_ci(sample, n_resamples=5000, seed=1)
    assert ci.mean == pytest.approx(float(np.mean(sample)))
    assert ci.low is not None and ci.high is not None
    assert ci.low < 0.7 < ci.high
    # Normal approximation of the width: 2 * 1.96 * sqrt(p(1-p)/n) ~ 0.09.
    assert 0.07 < ci.high - ci.low < 0.11
    assert bootstrap_ci(sample, n_resamples=5000, seed=1) == ci
    # 0/1 data puts quantiles on a 1/n grid, so seed sensitivity shows on continuous data.
    continuous = list(rng.normal(size=50))
    assert bootstrap_ci(continuous, seed=1) != bootstrap_ci(continuous, seed=2)


def test_bootstrap_ci_matches_scipy_percentile_interval() -> None:
    from scipy.stats import bootstrap

    values = np.random.default_rng(7).normal(3.0, 1.0, size=200)
    ours = bootstrap_ci(list(values), n_resamples=20_000, seed=0)
    theirs = bootstrap((values,), np.mean, n_resamples=20_000, method="percentile", random_state=0)
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.02)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.02)


def test_bootstrap_ci_in_blocks_equals_small_sample_sanity() -> None:
    # 3000 values x 10000 resamples is 30M cells: drawn in blocks, the interval is still sane.
    values = [1.0] * 1500 + [0.0] * 1500
    ci = bootstrap_ci(values, n_resamples=10_000, seed=0)
    assert ci.low is not None and ci.high is not None
    assert ci.low < 0.5 < ci.high and ci.high - ci.low < 0.04


def test_bootstrap_ci_na_and_tiny_samples() -> None:
    ci = bootstrap_ci([1.0, None, 0.0, float("nan"), 1.0], seed=0)
    assert (ci.n, ci.n_na) == (3, 2) and ci.mean == pytest.approx(2 / 3)
    assert bootstrap_ci([]).mean is None
    empty = bootstrap_ci([None, None])
    assert (empty.mean, empty.low, empty.high, empty.n, empty.n_na) == (None, None, None, 0, 2)
    single = bootstrap_ci([0.25])
    assert (single.mean, single.low, single.high, single.n) == (0.25, None, None, 1)
    constant = bootstrap_ci([0.5] * 10)
    assert (constant.low, constant.high) == (0.5, 0.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)


def test_paired_bootstrap_detects_a_real_difference() -> None:
    rng = np.random.default_rng(3)
    a = list(rng.binomial(1, 0.8, size=200).astype(float))
    b = list(rng.binomial(1, 0.5, size=200).astype(float))
    result = paired_bootstrap(a, b, n_resamples=5000, seed=0)
    assert result.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert result.low is not None and result.high is not None and result.p_value is not None
    assert 0 < result.low < result.diff < result.high
    assert result.p_value < 0.01 and result.n == 200


def test_paired_bootstrap_no_difference_and_na_pairs() -> None:
    same = [1.0, 0.0, 1.0, 1.0, 0.0]
    result = paired_bootstrap(same, same, n_resamples=1000)
    assert (result.diff, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    noisy = paired_bootstrap([1.0, 0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0, 0.0], n_resamples=2000)
    assert noisy.p_value is not None and noisy.p_value > 0.5
    dropped = paired_bootstrap([1.0, None, 0.0, 1.0], [0.0, 1.0, float("nan"), 0.0])
    assert (dropped.n, dropped.n_dropped, dropped.diff) == (2, 2, 1.0)
    assert paired_bootstrap([None], [1.0]).diff is None
    one = paired_bootstrap([1.0], [0.0])
    assert (one.diff, one.low, one.p_value, one.n) == (1.0, None, None, 1)
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 0.0])


@pytest.mark.parametrize(
    ("a_only", "b_only", "both"), [(10, 2, 5), (3, 3, 0), (0, 7, 2), (40, 25, 100), (1, 0, 0)]
)
def test_mcnemar_matches_scipy_binomtest(a_only: int, b_only: int, both: int) -> None:
    a = [1.0] * a_only + [0.0] * b_only + [1.0] * both + [0.0] * 4
    b = [0.0] * a_only + [1.0] * b_only + [1.0] * both + [0.0] * 4
    result = mcnemar_exact(a, b)
    expected = binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue
    assert (result.a_only, result.b_only, result.n) == (a_only, b_only, len(a))
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_mcnemar_na_bools_and_edge_cases() -> None:
    result = mcnemar_exact([True, None, False, True], [False, True, True, None])
    assert (result.a_only, result.b_only, result.n, result.n_dropped) == (1, 1, 2, 2)
    assert mcnemar_exact([], []).p_value == 1.0
    assert mcnemar_exact([1.0, 0.0], [1.0, 0.0]).p_value == 1.0
    big = mcnemar_exact([1.0] * 3000 + [0.0] * 2000, [0.0] * 3000 + [1.0] * 2000)
    assert 0 < big.p_value < 1e-40  # exact integers: no underflow to 0 or NaN
    with pytest.raises(ValueError, match="0/1 outcomes"):
        mcnemar_exact([0.5], [1.0])
