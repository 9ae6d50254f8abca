"""The loss-curve monitor on made-up curves: each verdict, the messages, early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.train.monitor import (
    CONVERGING,
    DIVERGING,
    SPIKES,
    WARMING_UP,
    LossWatch,
    MonitorConfig,
    diagnose,
    early_stop,
    find_spikes,
    overruled_by_val,
)


def noisy_decay(n: int = 80, seed: int = 0, noise: float = 0.08) -> list[float]:
    """A healthy curve: exponential decay from 3 towards 0.5 with multiplicative batch noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    return list((0.5 + 2.5 * np.exp(-steps / 20)) * (1 + noise * rng.standard_normal(n)))


def test_a_falling_noisy_curve_is_converging() -> None:
    for seed in range(5):
        losses = noisy_decay(seed=seed)
        diagnosis = diagnose(losses)
        assert diagnosis.verdict == CONVERGING, (seed, diagnosis)
        assert not diagnosis.stop and not diagnosis.warn and "converging" in diagnosis.message
        assert find_spikes(losses) == []


def test_a_flat_curve_is_converging_but_says_it_is_flat() -> None:
    diagnosis = diagnose([2.0 + 0.01 * math.sin(i) for i in range(40)])
    assert diagnosis.verdict == CONVERGING and "flat" in diagnosis.message


def test_spikes_that_recover_warn_with_their_steps() -> None:
    losses = noisy_decay()
    losses[30] *= 4
    losses[55] *= 3
    diagnosis = diagnose(losses)
    assert diagnosis.verdict == SPIKES and diagnosis.warn and not diagnosis.stop
    assert diagnosis.spikes == (30, 55)
    assert "2 spike(s) that recovered (step 31, 56)" in diagnosis.message
    assert "check the data" in diagnosis.message and "learning rate" in diagnosis.message


def test_a_fresh_spike_is_watched_then_called_diverging_if_it_stays() -> None:
    losses = noisy_decay(60)
    fresh = diagnose([*losses, losses[-1] * 5])
    assert fresh.verdict == SPIKES and "watching whether it recovers" in fresh.message
    stuck = diagnose([*losses, *[losses[-1] * 5] * 6])
    assert stuck.verdict == DIVERGING and stuck.stop
    assert "diverging" in stuck.message and "lower the learning rate" in stuck.message


def test_a_rising_curve_is_diverging() -> None:
    losses = [*noisy_decay(40), *[1.0 * 1.15**i for i in range(1, 15)]]
    diagnosis = diagnose(losses)
    assert diagnosis.verdict == DIVERGING and diagnosis.stop


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_is_diverging_at_once(bad: float) -> None:
    diagnosis = diagnose([3.0, 2.5, bad])
    assert diagnosis.verdict == DIVERGING and diagnosis.stop and "step 3" in diagnosis.message


def test_jitter_near_zero_is_neither_a_spike_nor_a_divergence() -> None:
    rng = np.random.default_rng(0)
    near_zero = list(0.02 * np.exp(rng.standard_normal(60)))  # an overfit run: 0.005 .. 0.1
    near_zero += [0.06, 0.07, 0.09, 0.08, 0.1, 0.07]  # 3-5x the best level, all of it tiny
    assert diagnose(near_zero).verdict == CONVERGING
    assert find_spikes(near_zero) == []


def test_too_few_steps_is_warming_up() -> None:
    assert diagnose([3.0, 2.0, 5.0]).verdict == WARMING_UP
    with pytest.raises(ValueError):
        MonitorConfig(window=1)


def test_the_live_watch_reports_only_changes() -> None:
    watch = LossWatch()
    changes = [watch.add(x) for x in noisy_decay(40)]
    verdicts = [c.verdict for c in changes if c is not None]
    assert verdicts == [WARMING_UP, CONVERGING]
    spike = watch.add(watch.losses[-1] * 5)
    assert spike is not None and spike.verdict == SPIKES
    assert watch.add(watch.losses[-2]) is None  # recovered: still "spikes", no new spike


def test_early_stop_after_patience_evaluations_without_improvement() -> None:
    assert early_stop([], patience=2).stop is False
    assert early_stop([2.0, 1.5, 1.2], patience=2).stop is False
    result = early_stop([2.0, 1.5, 1.6, 1.55], patience=2)
    assert result.stop and result.best_index == 1 and result.since_best == 2
    assert early_stop([2.0, 1.5, 1.6], patience=2).stop is False
    assert early_stop([2.0, 1.5, 1.6, 1.7, 1.8], patience=0).stop is False  # 0: never
    # an improvement smaller than min_delta does not count
    assert early_stop([2.0, 1.99, 1.985], patience=2, min_delta=0.05).stop
    assert early_stop([2.0, float("nan"), 1.0], patience=1).best_index == 2


def test_a_diverging_train_loss_is_overruled_only_while_val_loss_improves() -> None:
    losses = [*noisy_decay(40), *[1.0 * 1.15**i for i in range(1, 15)]]
    diagnosis = diagnose(losses)
    assert diagnosis.stop
    assert overruled_by_val(diagnosis, losses, [2.1, 0.69, 0.55]), "the newest val loss is the best"
    assert not overruled_by_val(diagnosis, losses, [2.1, 0.55, 0.60]), "val loss got worse: stop"
    assert not overruled_by_val(diagnosis, losses, [2.1]), "one val loss says nothing about a trend"
    assert not overruled_by_val(diagnosis, losses, []), "no val split: the train loss decides"
    assert not overruled_by_val(diagnosis, losses, [2.1, 0.55, float("nan")])
    healthy = diagnose(noisy_decay(80))
    assert not overruled_by_val(healthy, noisy_decay(80), [2.1, 0.5]), "nothing to overrule"
    broken = [3.0, 2.5, float("nan")]
    assert not overruled_by_val(diagnose(broken), broken, [2.1, 0.5]), "NaN always stops"
