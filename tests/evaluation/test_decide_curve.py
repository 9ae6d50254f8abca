"""When nothing meets, the rung that learns from examples is measured with less of its data, and
the decision says about how many examples would reach the target (or that more will not help)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.progress import RecordingProgress
from assistant.settings import Settings, load_settings
from evaluation.decide import engine
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.decide.report import render_markdown
from evaluation.decide.result import Decision
from evaluation.decide.text import explain
from evaluation.results import RunResult
from tests.helpers.decide import rung, write_config, write_prepared_data
from tests.helpers.decide_runs import ScriptedEvaluator, fake_trainer

N = 40


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


class SizeEvaluator(ScriptedEvaluator):
    """Right on the first ``right(strategy, model)`` of ``N`` items (dev and test)."""

    def __init__(self, right: Callable[[dict[str, Any], str], int]) -> None:
        self.right, self.model_calls = right, 0
        self.asked: list[tuple[dict[str, Any], str, int]] = []

    def scores(self, suite: Path, strategy: dict[str, Any], model: str) -> list[float | None]:
        good = self.right(strategy, model)
        return [float(i < good) for i in range(N)]

    def asked_for(
        self, suite: Path, strategy: dict[str, Any], model: str, injected: bool, run: RunResult
    ) -> None:
        self.asked.append((dict(strategy), model, len(run.records)))


def pool_size(strategy: dict[str, Any]) -> int:
    path = strategy.get("examples_file")
    return sum(1 for line in Path(path).read_text(encoding="utf-8").splitlines() if line) if path else 0


def write_pool(folder: Path, n: int) -> Path:
    path = folder / "pool.jsonl"
    rows = [{"user_input": f"Example ticket {i}", "reference": "billing"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def fewshot_decision(
    tmp_path: Path, settings: Settings, by_pool: dict[int, int]
) -> tuple[Decision, SizeEvaluator]:
    pool = write_pool(tmp_path, 16)
    path = write_config(
        tmp_path,
        n_dev=N,
        rungs=[rung("prompt"), rung("fewshot", k=4, examples_file=str(pool))],
        search=False,
    )
    evaluator = SizeEvaluator(lambda s, m: by_pool.get(pool_size(s), 0) if s["strategy"] == "fewshot" else 0)
    return run_decision(load_decision_config(path), settings, evaluator=evaluator), evaluator


def test_a_few_shot_rung_that_grows_with_its_pool_gets_about_n_examples(
    settings: Settings, tmp_path: Path
) -> None:
    decision, evaluator = fewshot_decision(tmp_path, settings, {4: 12, 8: 18, 16: 24})
    assert decision.status == "not_met" and decision.curve is not None
    curve = decision.curve
    assert curve.rung == "fewshot" and curve.unit == "few-shot examples"
    assert [p.n for p in curve.points] == [4, 8, 16]
    assert [p.mean for p in curve.points] == [0.3, 0.45, 0.6]
    assert curve.outcome == "reaches" and curve.needed is not None and 16 < curve.needed < 25 * 16
    # The smaller pools were scored on the same 40 dev items; the full pool's answers were reused.
    asked = [(pool_size(s), n) for s, _, n in evaluator.asked if s["strategy"] == "fewshot"]
    assert asked == [(16, N), (4, N), (8, N)]
    text = "\n".join(explain(decision, "en"))
    assert f"about {curve.needed}" in text and "4 / 8 / 16" in text
    assert "Learning curve" in render_markdown(decision)
    assert Decision.from_dict(decision.to_dict()).to_dict() == decision.to_dict()


def test_a_flat_curve_says_more_data_will_not_help(settings: Settings, tmp_path: Path) -> None:
    decision, _ = fewshot_decision(tmp_path, settings, {4: 20, 8: 20, 16: 20})
    assert decision.curve is not None and decision.curve.outcome == "flat"
    assert "will not help" in "\n".join(explain(decision, "en"))


def test_no_curve_when_a_rung_meets_or_when_switched_off(settings: Settings, tmp_path: Path) -> None:
    met, _ = fewshot_decision(tmp_path, settings, {4: 40, 8: 40, 16: 40})
    assert met.status == "met" and met.curve is None
    pool = write_pool(tmp_path, 16)
    path = write_config(
        tmp_path,
        n_dev=N,
        rungs=[rung("fewshot", examples_file=str(pool))],
        search=False,
        learning_curve=False,
    )
    evaluator = SizeEvaluator(lambda s, m: 10)
    off = run_decision(load_decision_config(path), settings, evaluator=evaluator)
    assert off.status == "not_met" and off.curve is None and len(evaluator.asked) == 1


def finetune_config(tmp_path: Path, model: Path, max_minutes: float | None) -> Path:
    data = write_prepared_data(tmp_path, n=120)
    return write_config(
        tmp_path,
        n_dev=N,
        model=str(model),
        rungs=[rung("prompt"), "finetune"],
        allow_finetune=True,
        search=False,
        finetune={
            "data": str(data),
            "adapter": "cases-ft",
            "max_minutes": max_minutes,
            "probe_steps": 0,
            "min_examples": 100,
            "min_per_label": 0,
            "try_rag": False,
        },
    )


def by_adapter(strategy: dict[str, Any], model: str) -> int:
    if "+" not in model:
        return 0
    return {"cases-ft-curve30": 16, "cases-ft-curve60": 22}.get(model.split("+")[1], 28)


def test_a_fine_tune_that_misses_is_trained_again_on_a_quarter_and_a_half_of_its_data(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    trained: list[tuple[str, int]] = []

    def trainer(request: Any, settings: Settings, progress: Any) -> None:
        rows = (Path(request.data) / "train.jsonl").read_text(encoding="utf-8").splitlines()
        trained.append((request.name, len(rows)))
        fake_trainer(request, settings, progress)

    speed = {"where": "this machine", "tokens_per_s": 10.0, "hours": 0.1, "source": "a stored run"}
    monkeypatch.setattr(engine, "measured", lambda ready, *args: ready)
    monkeypatch.setattr("evaluation.decide.readiness.estimates", lambda *a, **k: [speed])
    path = finetune_config(tmp_path, tiny_model_dir, max_minutes=30)
    evaluator = SizeEvaluator(by_adapter)
    progress = RecordingProgress()
    decision = run_decision(
        load_decision_config(path), settings, progress, evaluator=evaluator, trainer=trainer
    )
    assert decision.status == "not_met" and decision.curve is not None
    # The estimate is said before training starts, and the time it took after.
    notes = [str(m) for kind, m in progress.events if kind == "note" and "fine-tuning" in str(m)]
    assert notes[0].endswith("(estimated 6.0 min on this machine)") and notes[1].startswith(
        "fine-tuning took"
    )
    assert trained == [("cases-ft", 120), ("cases-ft-curve30", 30), ("cases-ft-curve60", 60)]
    # The quarter is part of the half (nested subsets), so a size adds data, never swaps it.
    folder = settings.home / "decisions" / "cases" / "curve"
    quarter = set((folder / "data_30" / "train.jsonl").read_text(encoding="utf-8").splitlines())
    half = set((folder / "data_60" / "train.jsonl").read_text(encoding="utf-8").splitlines())
    assert quarter < half
    curve = decision.curve
    assert curve.unit == "training examples" and [p.n for p in curve.points] == [30, 60, 120]
    assert [p.mean for p in curve.points] == [0.4, 0.55, 0.7]
    assert curve.outcome == "reaches" and curve.needed is not None and curve.needed > 120
    zh = "\n".join(explain(decision, "zh"))
    assert str(curve.needed) in zh and "训练样本" in zh


def test_a_fine_tune_curve_over_the_time_budget_is_not_trained(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    trained: list[str] = []

    def trainer(request: Any, settings: Settings, progress: Any) -> None:
        trained.append(request.name)
        fake_trainer(request, settings, progress)

    # The full run took 30 min: the curve would take about 22.5 more, over the 20-minute budget.
    speed = {"where": "this machine", "tokens_per_s": 10.0, "hours": 0.5, "source": "a stored run"}
    monkeypatch.setattr(engine, "measured", lambda ready, *args: ready)
    monkeypatch.setattr("evaluation.decide.readiness.estimates", lambda *a, **k: [speed])
    path = finetune_config(tmp_path, tiny_model_dir, max_minutes=40)
    config = load_decision_config(path)
    config.finetune.max_minutes = 20  # over budget for the curve, not for the run (checked before)
    monkeypatch.setattr(engine, "readiness", _ready_anyway(engine.readiness))
    decision = run_decision(config, settings, evaluator=SizeEvaluator(by_adapter), trainer=trainer)
    assert trained == ["cases-ft"] and decision.curve is None
    assert "max_minutes" in decision.curve_note and "30.0 min" in decision.curve_note
    assert "not measured" in "\n".join(explain(decision, "en"))


def _ready_anyway(real: Callable[..., Any]) -> Callable[..., Any]:
    """Readiness as computed, with the time budget check passed (the run itself fits)."""
    import dataclasses

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        ready = real(*args, **kwargs)
        checks = [dataclasses.replace(c, ok=True) if c.name == "time_budget" else c for c in ready.checks]
        return dataclasses.replace(ready, checks=checks, ready=all(c.ok for c in checks))

    return wrapped


def test_a_fine_tune_recommended_without_a_general_suite_says_forgetting_was_not_checked(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    speed = {"where": "this machine", "tokens_per_s": 10.0, "hours": 0.1, "source": "a stored run"}
    monkeypatch.setattr(engine, "measured", lambda ready, *args: ready)
    monkeypatch.setattr("evaluation.decide.readiness.estimates", lambda *a, **k: [speed])
    path = finetune_config(tmp_path, tiny_model_dir, max_minutes=30)
    evaluator = SizeEvaluator(lambda strategy, model: N if "+" in model else 0)
    decision = run_decision(load_decision_config(path), settings, evaluator=evaluator, trainer=fake_trainer)
    assert decision.recommended == "finetune" and decision.forgetting is None
    assert decision.reasons[-1].code == "forgetting_unchecked"
    assert any("no general suite" in line for line in explain(decision, "en"))
    assert any("通用能力测试集" in line for line in explain(decision, "zh"))
