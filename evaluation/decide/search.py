"""Rung search: every rung gets its best shot before the ladder escalates.

A rung as written is one configuration, so "prompting falls short" may only mean "this prompt
falls short". When a rung misses its target as written, Ladder searches the rung's own knobs
(``KNOBS``: the few-shot ``k`` and selection, RAG's ``k``, retrieval mode and ``min_score``,
reflection rounds, the prompt's output instruction) on a *tuning slice* of the dev split and
judges the configuration it chose on the *rest* of dev, items the choice never saw, so the
verdict is not flattered by the search. The search itself is Optuna's (grid when the grid fits
the budget, else TPE), seeded; the configuration as written is always attempt 1, scored free
from its dev answers.

    tuning, rest = split_dev(ids, fraction=0.4, seed=0)
    attempts = search_knobs(given, space, score, max_attempts=6, timeout_s=300, seed=0)

Everything here is pure: the engine passes ``score`` (evaluate a configuration on the tuning
slice) and does the evaluation on the rest.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.strategies.rag import DEFAULT_MIN_SCORE
from evaluation.decide.config import SearchSpec

__all__ = ["SearchSpec", "knob_space", "search_knobs", "split_dev"]

# Output-format instructions a prompt rung also tries (zh and en: the suite's language is the
# user's). Written for any short-answer task, not for one suite.
ANSWER_ONLY = ("只回答答案本身，不要解释。", "Answer with the answer only, no explanation.")


@dataclass
class Attempt:
    number: int
    knobs: dict[str, Any]  # the searched knobs' values (the rest of the config as written)
    score: float | None  # the search's objective on the tuning slice (the targets, see ``objective``)
    means: dict[str, float | None] = field(default_factory=dict)  # per target metric, tuning slice
    model_calls: int = 0
    seconds: float = 0.0
    given: bool = False  # the configuration as written
    chosen: bool = False


@dataclass
class SliceSearch:
    seed: int
    tuning: int  # items
    rest: int
    attempts: list[Attempt] = field(default_factory=list)
    chosen: dict[str, Any] = field(default_factory=dict)
    given_rest: dict[str, float | None] = field(default_factory=dict)  # the given config on the rest
    chosen_rest: dict[str, float | None] = field(default_factory=dict)  # the chosen config on the rest
    meets: bool | None = None  # the chosen configuration meets on the rest


@dataclass
class RungSearch:
    """What the search of one rung tried and chose."""

    knobs: list[str]
    sampler: str  # "grid" | "tpe"
    slices: list[SliceSearch] = field(default_factory=list)
    note: str = ""  # why the search stopped early or chose nothing

    @property
    def changed(self) -> bool:
        return bool(self.slices) and any(a.chosen and not a.given for a in self.slices[0].attempts)

    @property
    def stable(self) -> bool | None:
        """Every slice's verdict agrees (None: one slice, nothing to compare)."""
        verdicts = {s.meets for s in self.slices if s.meets is not None}
        return None if len(self.slices) < 2 else len(verdicts) <= 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RungSearch:
        slices = []
        for s in data.get("slices", []):
            values = dict(s)
            values["attempts"] = [Attempt(**a) for a in s.get("attempts", [])]
            slices.append(SliceSearch(**values))
        return cls(
            list(data.get("knobs", [])), str(data.get("sampler", "")), slices, str(data.get("note", ""))
        )


def split_dev(ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded tuning slice of ``fraction`` of the ids (at least 1, never all) and the rest, each
    in the given order."""
    if not 0 < fraction < 1:
        raise ValueError(f"tuning_fraction must be between 0 and 1, got {fraction}")
    n = min(len(ids) - 1, max(1, round(len(ids) * fraction)))
    picked = set(random.Random(seed).sample(list(ids), n))
    return [i for i in ids if i in picked], [i for i in ids if i not in picked]


def _ladder(values: Sequence[int], given: Any, top: int | None = None) -> list[Any]:
    out = {v for v in values if top is None or v <= top}
    if given is not None:
        out.add(given)
    return sorted(out)


def knob_space(strategy: Mapping[str, Any], pool_size: int | None = None) -> dict[str, list[Any]]:
    """The knobs worth searching for one rung, each with its candidate values (the written value
    included). Empty: nothing to search (the agent, a fine-tuned model)."""
    name = strategy.get("strategy", "prompt")
    if name == "prompt":
        given = strategy.get("output_format")
        return {"output_format": [given, *[v for v in ANSWER_ONLY if v != given]]}
    if name == "fewshot":
        top = pool_size if pool_size else None
        return {
            "k": _ladder((1, 2, 4, 8), strategy.get("k", 3), top),
            "selection": ["fixed", "similar"],
        }
    if name == "rag":
        return {
            "k": _ladder((2, 4, 6), strategy.get("k", 4)),
            "mode": ["hybrid", "dense", "bm25"],
            "min_score": sorted(
                {strategy.get("min_score", DEFAULT_MIN_SCORE), 0.3, None},
                key=lambda v: -1.0 if v is None else float(v),
            ),
        }
    if name == "reflection":
        return {"max_rounds": _ladder((1, 2, 3), strategy.get("max_rounds", 2))}
    return {}


def given_knobs(strategy: Mapping[str, Any], space: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The written configuration's value of each knob (its strategy default when unset)."""
    from assistant.strategies.base import strategy_class

    defaults = strategy_class(str(strategy.get("strategy", "prompt"))).Config.__dataclass_fields__
    out = {}
    for knob in space:
        if knob in strategy:
            out[knob] = strategy[knob]
        else:
            default = defaults[knob]
            factory = default.default_factory
            out[knob] = factory() if callable(factory) else default.default
    return out


def objective(means: Mapping[str, float | None], ops: Mapping[str, str]) -> float | None:
    """One number to maximise: the mean of the target metrics, each pointed the target's way."""
    values = [(-v if ops[m] == "<=" else v) for m, v in means.items() if m in ops and v is not None]
    return sum(values) / len(values) if values else None


def _key(knobs: Mapping[str, Any]) -> str:
    return json.dumps(knobs, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class Scored:
    means: dict[str, float | None]
    model_calls: int = 0


def search_knobs(
    given: dict[str, Any],
    given_scored: Scored,
    space: Mapping[str, Sequence[Any]],
    score: Callable[[dict[str, Any]], Scored],
    ops: Mapping[str, str],
    *,
    max_attempts: int,
    timeout_s: float | None,
    seed: int,
) -> tuple[list[Attempt], str, str]:
    """``(attempts, sampler, note)``: the given configuration first, then Optuna's proposals
    (each distinct configuration scored once) until ``max_attempts`` or ``timeout_s``. The chosen
    attempt (best objective; ties keep the given one, then the earlier) is marked."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = 1
    for values in space.values():
        grid *= len(values)
    sampler_name = "grid" if grid <= max_attempts else "tpe"
    # Optuna's categorical choices must be None, bool, int, float or str: the written values are.
    choices = {k: list(v) for k, v in space.items()}
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.GridSampler(choices, seed=seed)
        if sampler_name == "grid"
        else optuna.samplers.TPESampler(seed=seed, n_startup_trials=2)
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    attempts = [
        Attempt(
            1, dict(given), objective(given_scored.means, ops), dict(given_scored.means), 0, 0.0, given=True
        )
    ]
    seen = {_key(given): attempts[0]}
    study.enqueue_trial(dict(given))
    started = time.perf_counter()
    note = ""

    def run(trial: optuna.Trial) -> float:
        knobs = {k: trial.suggest_categorical(k, choices[k]) for k in choices}
        known = seen.get(_key(knobs))
        if known is None:
            t0 = time.perf_counter()
            scored = score(knobs)
            known = Attempt(
                len(attempts) + 1,
                knobs,
                objective(scored.means, ops),
                dict(scored.means),
                scored.model_calls,
                time.perf_counter() - t0,
            )
            attempts.append(known)
            seen[_key(knobs)] = known
        return known.score if known.score is not None else float("-inf")

    # Trials that repeat a configuration cost nothing; the budget counts distinct attempts.
    for _ in range(4 * max_attempts):
        if len(attempts) >= min(max_attempts, grid):
            break
        if timeout_s is not None and time.perf_counter() - started >= timeout_s:
            note = "time budget spent"
            break
        study.optimize(run, n_trials=1)
    best = max(
        attempts, key=lambda a: (a.score if a.score is not None else float("-inf"), a.given, -a.number)
    )
    best.chosen = True
    return attempts, sampler_name, note
