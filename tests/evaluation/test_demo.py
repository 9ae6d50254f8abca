"""``ladder demo``: the scenario wiring, the verdict check and the report, with a scripted fake.

The real run (qwen2.5-coder-0.5b, fine-tuning included) is too long for the suite; its
timing is measured by hand and reported. Here a fake that knows scenario 1's answers must
make the ladder stop at the prompt rung, and one that knows nothing must not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from assistant.types import Message
from evaluation.decide.demo import DEMO_DIR, SCENARIOS, pick_scenarios, run_demo, write_demo_report


def answers() -> dict[str, str]:
    out = {}
    for split in ("dev", "test"):
        path = DEMO_DIR / "suites" / f"general_knowledge_{split}.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out[row["user_input"]] = row["reference"]
    return out


def knowing(conversation: list[Message]) -> str:
    asked = next(m.content for m in reversed(conversation) if m.role == "user")
    return next((ref for question, ref in answers().items() if question in asked), "不知道")


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"home": str(isolated_home), "model": "fake", "threads": 1})


def test_every_demo_config_loads_and_names_its_expected_rung() -> None:
    from evaluation.decide.engine import load_decision_config

    for scenario in SCENARIOS:
        config = load_decision_config(DEMO_DIR / "decisions" / scenario.config)
        rungs = [r.label if hasattr(r, "label") else str(r) for r in config.rungs]
        assert any(scenario.expected in str(r) for r in rungs), (scenario, rungs)
    assert [s.expected for s in SCENARIOS] == ["prompt", "rag", "finetune"]


def test_an_unknown_scenario_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown demo scenario 'nope'"):
        pick_scenarios(["nope"])
    assert [s.key for s in pick_scenarios(["routing", "general"])] == ["routing", "general"]


@pytest.mark.slow
def test_a_model_that_knows_general_knowledge_stops_at_prompt(settings: Settings, tmp_path: Path) -> None:
    result = run_demo(settings, scenarios=["general"], backend=FakeBackend(default=knowing))
    outcome = result.outcomes[0]
    assert outcome.decision.recommended == "prompt" and outcome.decision.passed
    assert [r.label for r in outcome.decision.rungs if r.dev] == ["prompt"]  # stopped there
    assert result.as_expected
    page = write_demo_report(result, tmp_path / "report").read_text(encoding="utf-8")
    assert "as expected" in page and "General knowledge" in page and "<script" not in page
    assert (tmp_path / "report" / "general" / "decision.json").is_file()

    # Another home: answers are cached by model reference, and both fakes are "fake".
    other = load_settings({"home": str(tmp_path / "other_home"), "model": "fake", "threads": 1})
    clueless = run_demo(other, scenarios=["general"], backend=FakeBackend(default="不知道"))
    assert not clueless.as_expected and clueless.outcomes[0].decision.recommended != "prompt"
    page = write_demo_report(clueless, tmp_path / "again").read_text(encoding="utf-8")
    assert "NOT as expected" in page
