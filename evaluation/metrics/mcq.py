"""Multiple-choice metrics: accuracy, the unparseable rate, and per-group breakdowns.

Two ways to get the predicted letter:

- logprob mode (``choice_scores`` in the sample, one score per option): the argmax. Ties
  and non-finite scores give no prediction rather than a silent pick of the first option.
- generate mode (``response``): the letter the reply names, extracted by the same rules
  the reflection loop's ``mcq`` verifier uses ("答案是B", "选B", "答案：B", "(B)", "B.",
  "the answer is B", the option's own text). An unparseable reply gives ``None``, never a
  guess; it scores 0 for accuracy and 1 for ``unparseable``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from assistant.strategies.verifiers import LETTERS, McqVerifier
from evaluation.metrics.base import BaseMetric, Score, na


def extract_letter(text: str, choices: Sequence[str]) -> str | None:
    """The option letter a free-text reply chooses, or ``None`` when it names none or several."""
    letter, _reason = McqVerifier.extract(text, list(choices))
    return letter


def argmax_letter(choice_scores: Sequence[float]) -> str | None:
    """The letter of the highest score; ``None`` on a tie for the top or a non-finite score."""
    scores = [float(s) for s in choice_scores]
    if not scores or any(not math.isfinite(s) for s in scores):
        return None
    best = max(scores)
    if scores.count(best) > 1:
        return None
    return LETTERS[scores.index(best)]


@dataclass(frozen=True)
class Prediction:
    letter: str | None
    mode: str  # "logprob" or "generate"
    reason: str = ""


def predict(sample: Mapping[str, Any]) -> Prediction:
    """The predicted letter: ``choice_scores`` first (logprob mode), else the ``response``."""
    choices = sample.get("choices") or []
    scores = sample.get("choice_scores")
    if scores is not None:
        if len(scores) != len(choices):
            return Prediction(None, "logprob", f"{len(scores)} scores for {len(choices)} options")
        letter = argmax_letter(scores)
        return Prediction(letter, "logprob", "" if letter else "tied or non-finite option scores")
    letter, reason = McqVerifier.extract(str(sample.get("response") or ""), list(choices))
    return Prediction(letter, "generate", reason)


class Accuracy(BaseMetric):
    name: ClassVar[str] = "accuracy"
    requires: ClassVar[tuple[str, ...]] = ("reference", "choices")
    requires_any: ClassVar[tuple[str, ...]] = ("choice_scores", "response")
    kinds: ClassVar[tuple[str, ...]] = ("mcq",)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        prediction = predict(sample)
        correct = prediction.letter is not None and prediction.letter == str(sample["reference"]).upper()
        return Score(
            float(correct), prediction.reason, {"predicted": prediction.letter, "mode": prediction.mode}
        )


class Unparseable(BaseMetric):
    """1 when a generated reply names no single option letter; its mean is the unparseable rate."""

    name: ClassVar[str] = "unparseable"
    requires: ClassVar[tuple[str, ...]] = ("choices", "response")
    kinds: ClassVar[tuple[str, ...]] = ("mcq",)
    modes: ClassVar[tuple[str, ...]] = ("generate",)
    higher_is_better: ClassVar[bool] = False

    def compute(self, sample: Mapping[str, Any]) -> Score:
        if sample.get("choice_scores") is not None:
            return na("logprob mode has no reply to parse")
        prediction = predict(sample)
        return Score(float(prediction.letter is None), prediction.reason, {"predicted": prediction.letter})


# ---- breakdowns -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupScore:
    group: str
    mean: float | None
    n: int
    n_na: int


def breakdown(values: Sequence[float | None], groups: Sequence[str | None]) -> dict[str, GroupScore]:
    """Mean per group (subject or category), n/a values counted apart; ``None`` groups are skipped.

    Groups come back sorted by name so reports are stable.
    """
    if len(values) != len(groups):
        raise ValueError(f"{len(values)} values but {len(groups)} groups")
    collected: dict[str, list[float | None]] = {}
    for value, group in zip(values, groups, strict=True):
        if group is not None:
            collected.setdefault(group, []).append(value)
    out = {}
    for group in sorted(collected):
        scored = [v for v in collected[group] if v is not None and not math.isnan(v)]
        mean = sum(scored) / len(scored) if scored else None
        out[group] = GroupScore(group, mean, len(scored), len(collected[group]) - len(scored))
    return out


def macro_average(groups: Mapping[str, GroupScore]) -> float | None:
    """The mean of group means (C-Eval's "Average" over subjects); groups with no score are left out."""
    means = [g.mean for g in groups.values() if g.mean is not None]
    return sum(means) / len(means) if means else None
