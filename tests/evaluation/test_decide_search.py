"""The rung search: a rung that misses as written gets its knobs searched on a tuning slice of dev,
and the chosen configuration is judged on the rest, so a lucky slice cannot flatter the verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from evaluation.decide.config import decision_config_from_dict
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.decide.report import render_html, render_markdown
from evaluation.decide.result import Decision
from evaluation.decide.search import knob_space, split_dev
from evaluation.results import RunResult
from tests.helpers.decide import rung, write_config, write_examples
from tests.helpers.decide_runs import ScriptedEvaluator

N = 40


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


Right = Callable[[str, dict[str, Any], int], bool]


class KnobEvaluator(ScriptedEvaluator):
    """Answers item ``i`` right when ``right(split, strategy config, i)``; counts model calls."""

    def __init__(self, right: Right) -> None:
        self.right, self.model_calls = right, 0
        self.asked: list[tuple[str, dict[str, Any], int]] = []
        self.models: list[tuple[str, bool]] = []

    def scores(self, suite: Path, strategy: dict[str, Any], model: str) -> list[float | None]:
        split = "test" if "test" in suite.stem else "dev"
        return [1.0 if self.right(split, strategy, i) else 0.0 for i in range(N)]

    def asked_for(
        self, suite: Path, strategy: dict[str, Any], model: str, injected: bool, run: RunResult
    ) -> None:
        split = "test" if "test" in suite.stem else "dev"
        self.asked.append((split, dict(strategy), len(run.records)))
        self.models.append((model, injected))
        self.model_calls += len(run.records)
        run.model_calls = len(run.records)


def config(tmp_path: Path, **values: Any) -> Path:
    examples = write_examples(tmp_path)
    rungs = [rung("prompt"), rung("fewshot", k=1, examples_file=str(examples))]
    return write_config(tmp_path, n_dev=N, rungs=rungs, **values)


def decide(path: Path, settings: Settings, right: Right) -> tuple[Decision, KnobEvaluator]:
    evaluator = KnobEvaluator(right)
    return run_decision(load_decision_config(path), settings, evaluator=evaluator), evaluator


def fewshot_k4_similar(split: str, strategy: dict[str, Any], i: int) -> bool:
    """Few-shot is right on every item only with k=4 and similar selection; prompt never."""
    if strategy["strategy"] != "fewshot":
        return False
    return (strategy.get("k") == 4 and strategy.get("selection") == "similar") or i % 2 == 0


def test_a_rung_that_misses_as_written_is_searched_and_judged_on_the_items_the_search_never_saw(
    settings: Settings, tmp_path: Path
) -> None:
    decision, evaluator = decide(config(tmp_path, search={"max_attempts": 8}), settings, fewshot_k4_similar)
    fewshot = decision.rung("fewshot")
    assert fewshot.search is not None and fewshot.search.changed
    found = fewshot.search.slices[0]
    assert (found.tuning, found.rest) == (16, 24)
    assert found.attempts[0].given and found.attempts[0].knobs == {"k": 1, "selection": "fixed"}
    assert found.attempts[0].model_calls == 0, "the written config is scored from its dev answers"
    assert found.chosen == {"k": 4, "selection": "similar"}
    assert len({str(a.knobs) for a in found.attempts}) == len(found.attempts) <= 8
    # The verdict is on the 24 other dev items, with the chosen config; the test split confirms it.
    assert fewshot.dev is not None and fewshot.dev.metrics["exact_match"].n == 24
    assert fewshot.meets and fewshot.config["k"] == 4 and fewshot.config["selection"] == "similar"
    assert decision.recommended == "fewshot" and decision.status == "met"
    tests = [s for split, s, _ in evaluator.asked if split == "test"]
    assert tests == [fewshot.config]
    # Every dev item asked with the chosen config was either a tuning item or a rest item, once each.
    chosen = [n for split, s, n in evaluator.asked if split == "dev" and s == fewshot.config]
    assert chosen == [16, 24]
    markdown = render_markdown(decision)
    assert "Rung search" in markdown and "k=4, selection=similar" in markdown
    assert "k=4, selection=similar" in render_html(decision)
    decision.language = "zh"
    assert "配置搜索" in render_markdown(decision) and "已尽其所能" in render_markdown(decision)
    decision.language = "en"
    assert Decision.from_dict(decision.to_dict()).to_dict() == decision.to_dict()


def test_a_configuration_that_only_wins_on_the_tuning_slice_does_not_flatter_the_verdict(
    settings: Settings, tmp_path: Path
) -> None:
    path = config(tmp_path, search={"max_attempts": 8})
    tuning, _ = split_dev([f"i{i}" for i in range(N)], 0.4, 0)
    lucky = {int(t[1:]) for t in tuning}

    def right(split: str, strategy: dict[str, Any], i: int) -> bool:
        if strategy["strategy"] != "fewshot":
            return False
        if strategy.get("k") == 2:  # perfect on the tuning slice, chance elsewhere
            return i in lucky or i % 2 == 0
        return i % 2 == 0

    decision, _ = decide(path, settings, right)
    fewshot = decision.rung("fewshot")
    assert fewshot.search is not None and fewshot.search.slices[0].chosen["k"] == 2
    found = fewshot.search.slices[0]
    assert next(a for a in found.attempts if a.chosen).means["exact_match"] == 1.0, "perfect when tuning"
    assert not fewshot.meets and fewshot.dev is not None
    # On the rest it is no better than as written: the verdict is the rest's, not the slice's.
    assert found.chosen_rest == found.given_rest and found.meets is False
    assert fewshot.dev.metrics["exact_match"].n == 24
    assert fewshot.dev.metrics["exact_match"].mean == found.given_rest["exact_match"]
    assert not found.meets
    assert decision.status == "not_met"


def test_a_rung_that_meets_as_written_is_not_searched(settings: Settings, tmp_path: Path) -> None:
    decision, _ = decide(config(tmp_path), settings, lambda split, s, i: s["strategy"] == "fewshot")
    assert decision.rung("fewshot").search is None and decision.rung("fewshot").dev is not None
    assert decision.rung("fewshot").dev.metrics["exact_match"].n == N  # type: ignore[union-attr]
    assert decision.rung("prompt").search is not None, "prompt missed, so it was searched"


def test_more_slices_say_whether_the_verdict_depends_on_the_slice(settings: Settings, tmp_path: Path) -> None:
    decision, _ = decide(
        config(tmp_path, search={"slices": 3, "max_attempts": 8, "rungs": ["fewshot"]}),
        settings,
        fewshot_k4_similar,
    )
    assert decision.rung("prompt").search is None, "search.rungs names fewshot only"
    found = decision.rung("fewshot").search
    assert found is not None and [s.seed for s in found.slices] == [0, 1, 2]
    assert all(s.meets for s in found.slices) and found.stable is True
    assert "same verdict" in render_markdown(decision)


def test_search_off_small_dev_and_spent_budget(settings: Settings, tmp_path: Path) -> None:
    off, evaluator = decide(config(tmp_path, search=False), settings, fewshot_k4_similar)
    assert off.rung("fewshot").search is None and not off.rung("fewshot").meets
    assert all(n == N for split, _, n in evaluator.asked if split == "dev")
    small, _ = decide(config(tmp_path, search={"min_items": 50}), settings, fewshot_k4_similar)
    found = small.rung("fewshot").search
    assert found is not None and not found.slices and "min_items" in found.note
    spent, _ = decide(config(tmp_path, search={"max_minutes": 1e-9}), settings, fewshot_k4_similar)
    found = spent.rung("fewshot").search
    assert found is not None and "max_minutes" in found.note


@pytest.mark.parametrize(
    "search",
    [
        "yes",
        {"max_attempts": 0},
        {"tuning_fraction": 0.95},
        {"slices": True},
        {"max_minutes": -1},
        {"rungs": "fewshot"},
        {"budget": 3},
    ],
)
def test_bad_search_settings_are_config_errors(search: Any) -> None:
    data = {"suites": {"dev": "d.yaml", "test": "t.yaml"}, "targets": {"exact_match": 0.8}, "search": search}
    with pytest.raises(ConfigError, match="search"):
        decision_config_from_dict(data, Path("."), "decide.yaml")


def test_knob_spaces_keep_the_written_value_and_respect_the_pool() -> None:
    assert knob_space({"strategy": "fewshot", "k": 3}, pool_size=2) == {
        "k": [1, 2, 3],
        "selection": ["fixed", "similar"],
    }
    rag = knob_space({"strategy": "rag", "k": 5, "min_score": 0.5})
    assert rag["k"] == [2, 4, 5, 6] and rag["min_score"] == [None, 0.3, 0.5]
    assert knob_space({"strategy": "prompt", "output_format": "One word."})["output_format"][0] == "One word."
    assert knob_space({"strategy": "agent"}) == {}
    tuning, rest = split_dev([str(i) for i in range(10)], 0.4, 3)
    assert len(tuning) == 4 and sorted(tuning + rest, key=int) == [str(i) for i in range(10)]
    assert split_dev([str(i) for i in range(10)], 0.4, 3) == (tuning, rest)


def test_a_rung_scored_by_log_probability_has_no_output_instruction_to_search(
    settings: Settings, tmp_path: Path
) -> None:
    class LogprobEvaluator(KnobEvaluator):
        def evaluate(self, suite: Path, strategy: dict[str, Any], *args: Any, **kwargs: Any) -> RunResult:
            run = super().evaluate(suite, strategy, *args, **kwargs)
            run.mode = "logprob" if strategy["strategy"] == "prompt" else "generate"
            return run

    evaluator = LogprobEvaluator(fewshot_k4_similar)
    decision = run_decision(load_decision_config(config(tmp_path)), settings, evaluator=evaluator)
    assert decision.rung("prompt").search is None, "an exam scored by log-probability: nothing to search"
    assert all(s["strategy"] != "prompt" or n == N for _, s, n in evaluator.asked)
    assert decision.rung("fewshot").search is not None


def test_a_rung_on_its_own_model_is_searched_and_judged_with_that_model(
    settings: Settings, tmp_path: Path, tiny_model_dir: Path
) -> None:
    examples = write_examples(tmp_path)
    own = {"strategy": "fewshot", "k": 1, "examples_file": str(examples), "model": str(tiny_model_dir)}
    path = write_config(tmp_path, n_dev=N, rungs=[own], search={"max_attempts": 8})
    evaluator = KnobEvaluator(fewshot_k4_similar)
    decision = run_decision(load_decision_config(path), settings, evaluator=evaluator)
    fewshot = decision.rung(f"fewshot@{tiny_model_dir}")
    assert fewshot.search is not None and fewshot.search.changed and fewshot.meets
    # Dev, every attempt, the rest and the test split: all on the rung's model, by reference.
    assert len(evaluator.models) > 3 and set(evaluator.models) == {(str(tiny_model_dir), False)}
