"""A decision's judged target is used only when its judge agrees with people.

The judged metric is the test helper's (ragas faithfulness against the reference); the labelled
set is one this test writes, with a person's verdict on answers marked GOOD or BAD. A judge that
reads the mark agrees; one that says "supported" to everything orders no pair and is refused
before any rung runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from assistant.types import Message
from evaluation.decide.config import parse_target
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.decide.report import render_markdown
from evaluation.metrics.judge import Judge
from tests.helpers.decide import CaseFake, write_config, write_suite
from tests.helpers.judged import METRIC, statements, verdicts


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


@pytest.fixture
def labelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [
        {
            "id": f"item-{i}",
            "user_input": f"Question {i}?",
            "response": f"{'GOOD' if i % 2 else 'BAD'} answer {i}",
            "reference": f"Reference {i}",
            "labels": {METRIC: 1.0 if i % 2 else 0.0},
        }
        for i in range(10)
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.setattr("evaluation.calibration.data.default_set_path", lambda: path)
    return path


def judge(reads_the_mark: bool) -> Judge:
    def reply(conversation: list[Message]) -> str:
        prompt = conversation[-1].content
        if "Break down each sentence" in prompt:  # the answer, split; the mark travels with it
            return statements("the answer is GOOD" if "GOOD" in prompt else "the answer is BAD")
        if reads_the_mark and "the answer is BAD" in prompt:
            return verdicts(0)
        return verdicts(1)

    return Judge(FakeBackend(default=reply, model_id="scripted-judge"))


def config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, n_dev=20, n_test=10, judge="judge-ref", targets={"exact_match": ">= 0.8"})
    for split, n in (("dev", 20), ("test", 10)):
        write_suite(tmp_path, split, n, metrics=("exact_match", METRIC))
    return path


def test_a_judge_that_agrees_too_little_is_refused_before_any_rung(
    settings: Settings, tmp_path: Path, labelled: Path
) -> None:
    path = config(tmp_path)
    data = load_decision_config(path)
    data.targets.append(parse_target(METRIC, ">= 0.5", "test"))
    backend = CaseFake({"prompt": 20})
    with pytest.raises(ConfigError) as caught:
        run_decision(data, settings, backend=backend, judge=judge(reads_the_mark=False))
    text = str(caught.value)
    assert "'judge-ref' agrees too little" in text and f"{METRIC}: agreement 0.50" in text
    assert backend.calls == []  # no rung ran


def test_an_agreeing_judge_is_checked_once_stored_and_shown(
    settings: Settings, tmp_path: Path, labelled: Path
) -> None:
    data = load_decision_config(config(tmp_path))
    data.targets.append(parse_target(METRIC, ">= 0.5", "test"))
    decision = run_decision(
        data, settings, backend=CaseFake({"prompt": 20}), judge=judge(reads_the_mark=True)
    )
    assert decision.judge == "judge-ref"
    assert decision.judge_agreement[METRIC].startswith("1.00")
    assert decision.judge_calls > 0
    markdown = render_markdown(decision)
    assert "judge-ref (agreement with people: " in markdown and "answering +" in markdown
    # stored: the next decision does not check again
    from evaluation.calibration.store import stored_agreement

    stored = stored_agreement(settings, "judge-ref", METRIC)
    assert stored is not None and stored.concordance == 1.0


def test_a_metric_the_labelled_set_cannot_measure_passes_and_says_so(
    settings: Settings, tmp_path: Path, labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "other.jsonl"
    empty.write_text(
        json.dumps({"id": "a", "user_input": "q", "labels": {"faithfulness": 1}}) + "\n", encoding="utf-8"
    )
    monkeypatch.setattr("evaluation.calibration.data.default_set_path", lambda: empty)
    data = load_decision_config(config(tmp_path))
    data.targets.append(parse_target(METRIC, ">= 0.5", "test"))
    decision = run_decision(
        data, settings, backend=CaseFake({"prompt": 20}), judge=judge(reads_the_mark=False)
    )
    assert decision.judge_agreement[METRIC].startswith("not measured")


def test_the_bar_can_be_turned_off_and_is_validated(
    settings: Settings, tmp_path: Path, labelled: Path
) -> None:
    path = config(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "judge_min_agreement: 0\n", encoding="utf-8")
    data = load_decision_config(path)
    data.targets.append(parse_target(METRIC, ">= 0.5", "test"))
    decision = run_decision(
        data, settings, backend=CaseFake({"prompt": 20}), judge=judge(reads_the_mark=False)
    )
    assert decision.judge_agreement == {}
    path.write_text(text + "judge_min_agreement: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="judge_min_agreement must be in"):
        load_decision_config(path)
