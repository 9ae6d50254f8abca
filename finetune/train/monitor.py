"""Reading a loss curve while it is drawn: converging, spikes that recover, or diverging.

Pure functions over a series of losses (one per optimizer step), so they are tested on
made-up curves and the trainer, the CLI and the UI all give the same verdict:

- ``converging``: the loss falls (or holds) with ordinary noise. Carry on.
- ``spikes``: the loss jumped well above its recent level and came back. Training goes on,
  with a warning: a few bad examples or a learning rate at the edge of stability.
- ``diverging``: the loss is NaN/inf, or has stayed well above the best it reached. Training
  stops: check the data and the hyperparameters (lower the learning rate first).
- ``warming_up``: too few steps to tell.

Robustness: a spike must stand out from the recent median relatively (``spike_factor``),
against the recent spread (median absolute deviation) and in absolute terms (``min_jump``),
so neither the ordinary step-to-step noise of small batches nor the jitter of a loss near
zero is called a spike, or a divergence.

Early stopping reads the validation series: ``early_stop`` says when val loss has not
improved for ``patience`` evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

CONVERGING, SPIKES, DIVERGING, WARMING_UP = "converging", "spikes", "diverging", "warming_up"


@dataclass(frozen=True)
class Diagnosis:
    verdict: str
    message: str
    spikes: tuple[int, ...] = ()  # step indices (0-based) of the spikes found

    @property
    def stop(self) -> bool:
        return self.verdict == DIVERGING

    @property
    def warn(self) -> bool:
        return self.verdict == SPIKES


@dataclass(frozen=True)
class MonitorConfig:
    window: int = 10  # steps in the recent level a point is compared with
    min_steps: int = 8  # fewer steps than this: warming_up
    spike_factor: float = 1.5  # a spike is above this times the recent median ...
    spike_mads: float = 6.0  # ... and this many median absolute deviations above it
    diverge_factor: float = 1.5  # sustained loss above this times the best level: diverging
    # ... and a spike or a rise must also be this much (nats) above the level: near zero,
    # a loss that doubles from 0.01 to 0.02 is noise, not a problem
    min_jump: float = 0.2

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2, got {self.window}")
        if self.spike_factor <= 1 or self.diverge_factor <= 1:
            raise ValueError("spike_factor and diverge_factor must be > 1")


def _first_non_finite(losses: Sequence[float]) -> int | None:
    return next((i for i, x in enumerate(losses) if not math.isfinite(x)), None)


def _levels(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The recent level (median of the previous ``window`` values) and spread (median absolute
    deviation) before each point; NaN for the first three points."""
    level = np.full(len(values), np.nan)
    spread = np.full(len(values), np.nan)
    short = [values[max(0, i - window) : i] for i in range(3, min(window, len(values)))]
    for offset, previous in enumerate(short):
        level[3 + offset] = np.median(previous)
        spread[3 + offset] = np.median(np.abs(previous - level[3 + offset]))
    if len(values) > window:
        full = np.lib.stride_tricks.sliding_window_view(values[:-1], window)
        medians = np.median(full, axis=1)
        level[window:] = medians
        spread[window:] = np.median(np.abs(full - medians[:, None]), axis=1)
    return level, spread


def find_spikes(losses: Sequence[float], config: MonitorConfig = MonitorConfig()) -> list[int]:
    """Indices of points well above their recent level, relatively and against the noise."""
    values = np.asarray(losses, dtype=float)
    level, spread = _levels(values, config.window)
    floor = np.maximum(spread, 1e-3 * np.abs(level))
    with np.errstate(invalid="ignore"):
        hits = (values > level * config.spike_factor) & (values > level + config.spike_mads * floor)
        hits &= values > level + config.min_jump
    return [int(i) for i in np.flatnonzero(hits)]


def diagnose(losses: Sequence[float], config: MonitorConfig = MonitorConfig()) -> Diagnosis:
    """The verdict on a training-loss series so far, with a message for the person watching."""
    bad = _first_non_finite(losses)
    if bad is not None:
        return Diagnosis(
            DIVERGING,
            f"loss became {losses[bad]} at step {bad + 1}: stop and check the data and hyperparameters "
            "(lower the learning rate first)",
        )
    if len(losses) < config.min_steps:
        return Diagnosis(WARMING_UP, f"{len(losses)} step(s) so far: too early to judge the loss curve")
    values = np.asarray(losses, dtype=float)
    window = config.window
    tail = max(3, window // 2)
    levels, _ = _levels(values, window)
    # The best level reached before the last few steps; the recent steps are judged against it.
    earlier = levels[: len(values) - tail + 1]
    best = float(np.nanmin(earlier)) if np.isfinite(earlier).any() else float(np.median(values[:window]))
    recent = values[-tail:]
    if best > 0 and bool(np.all(recent > max(best * config.diverge_factor, best + config.min_jump))):
        return Diagnosis(
            DIVERGING,
            f"loss has risen to {float(np.median(recent)):.3g} over the last {tail} steps, from a best level "
            f"of {best:.3g}: training is diverging; stop and check the data and hyperparameters "
            "(lower the learning rate first)",
        )
    spikes = find_spikes(losses, config)
    start = float(np.median(values[: min(window, len(values))]))
    now = float(np.median(values[-min(window, len(values)) :]))
    trend = f"loss {start:.3g} → {now:.3g}"
    if spikes:
        steps = ", ".join(str(i + 1) for i in spikes[:5]) + (" …" if len(spikes) > 5 else "")
        if spikes[-1] >= len(values) - 2 and values[-1] > levels[spikes[-1]] * config.spike_factor:
            what = (
                f"the loss spiked at step {spikes[-1] + 1} (spikes so far: step {steps}); "
                "watching whether it recovers"
            )
        else:
            what = f"{len(spikes)} spike(s) that recovered (step {steps})"
        return Diagnosis(
            SPIKES,
            f"{trend}, {what}: check the data for bad examples, or lower the learning rate",
            tuple(spikes),
        )
    if now > start * 0.98:
        return Diagnosis(CONVERGING, f"{trend}: flat so far; if it stays flat, raise the learning rate")
    return Diagnosis(CONVERGING, f"{trend}: converging")


@dataclass
class EarlyStop:
    stop: bool
    best_index: int | None  # index into the val series of the best value (None: empty series)
    since_best: int  # evaluations since the best one


def early_stop(val_losses: Sequence[float], patience: int, min_delta: float = 0.0) -> EarlyStop:
    """Whether val loss has gone ``patience`` evaluations without improving by more than
    ``min_delta`` on its best. ``patience`` 0 never stops."""
    best_index: int | None = None
    for index, value in enumerate(val_losses):
        if not math.isfinite(value):
            continue
        if best_index is None or value < val_losses[best_index] - min_delta:
            best_index = index
    if best_index is None:
        return EarlyStop(False, None, len(val_losses))
    since = len(val_losses) - 1 - best_index
    return EarlyStop(patience > 0 and since >= patience, best_index, since)


def overruled_by_val(diagnosis: Diagnosis, losses: Sequence[float], val_losses: Sequence[float]) -> bool:
    """Whether a "diverging" verdict on the train loss is overruled by the validation loss.

    With small batches that mix tasks the per-step loss swings with the batch's make-up (a
    batch of short labels against one of general answers), and a run of unlucky batches can
    look like divergence while the model still improves. When the newest of at least two val
    losses is the best so far, training goes on until the next val check decides; a loss
    that is NaN/inf always stops."""
    if not diagnosis.stop or not losses or not math.isfinite(losses[-1]):
        return False
    finite = [v for v in val_losses if math.isfinite(v)]
    return len(finite) >= 2 and math.isfinite(val_losses[-1]) and val_losses[-1] <= min(finite)


@dataclass
class LossWatch:
    """The live side: feed losses as they come, get a new ``Diagnosis`` when the verdict changes."""

    config: MonitorConfig = field(default_factory=MonitorConfig)
    losses: list[float] = field(default_factory=list)
    last: Diagnosis | None = None

    def add(self, loss: float) -> Diagnosis | None:
        self.losses.append(loss)
        diagnosis = diagnose(self.losses, self.config)
        changed = self.last is None or diagnosis.verdict != self.last.verdict
        changed = changed or len(diagnosis.spikes) > len(self.last.spikes if self.last else ())
        self.last = diagnosis
        return diagnosis if changed else None
