"""The base model as a rung dimension: a rung may name its model, and with the default rungs the
ladder also tries the plain prompt on the next larger local pack."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from evaluation.decide import plan as plan_module
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.decide.models import compute_scale, larger_pack
from evaluation.decide.plan import plan_decision
from tests.helpers.decide import rung, write_config, write_examples
from tests.helpers.decide_runs import SyntheticEvaluator


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1, "model": "qwen2.5-coder-0.5b"})


def test_the_next_larger_pack_of_the_family_and_its_cost_scale(settings: Settings) -> None:
    assert larger_pack("qwen2.5-coder-0.5b", settings) == ("qwen2.5-coder-1.5b", False)
    assert larger_pack("qwen2.5-coder-1.5b", settings) is None, "nothing larger in the catalog"
    assert larger_pack("smollm2-135m", settings) is None, "no larger SmolLM2 pack"
    assert larger_pack("/some/folder", settings) is None
    assert compute_scale("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b") == pytest.approx(2.27, abs=0.01)
    assert compute_scale("openai:m@http://127.0.0.1:1/v1", "qwen2.5-coder-0.5b") == 1.0


def test_a_rung_on_its_own_model_is_evaluated_with_it_by_reference(
    settings: Settings, tmp_path: Path, tiny_model_dir: Path
) -> None:
    examples = write_examples(tmp_path)
    path = write_config(
        tmp_path,
        rungs=[
            rung("prompt"),
            {"strategy": "prompt", "model": str(tiny_model_dir)},
            rung("fewshot", examples_file=str(examples)),
        ],
        search=False,
    )
    config = load_decision_config(path)
    label = f"prompt@{tiny_model_dir}"
    assert [r.label for r in config.rungs] == ["prompt", label, "fewshot"]
    evaluator = SyntheticEvaluator({("dev", False): 10, ("dev:fewshot", False): 40, ("test", False): 20})
    decision = run_decision(config, settings, evaluator=evaluator)
    assert decision.rung(label).model == str(tiny_model_dir)
    assert ("dev", str(tiny_model_dir)) in evaluator.asked
    assert decision.recommended == "fewshot"


def test_an_explicit_rung_on_a_pack_that_is_not_installed_is_refused_with_the_pull_command(
    settings: Settings, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path, rungs=[rung("prompt"), {"strategy": "prompt", "model": "qwen2.5-coder-1.5b"}]
    )
    with pytest.raises(ConfigError, match="not installed") as info:
        plan_decision(load_decision_config(path), settings)
    assert "ladder models pull qwen2.5-coder-1.5b" in (info.value.hint or "")


def test_the_default_rungs_try_the_larger_pack_when_it_is_installed_ordered_by_scaled_cost(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = write_examples(tmp_path)
    monkeypatch.setattr(plan_module, "larger_pack", lambda base, s: ("qwen2.5-coder-1.5b", True))
    monkeypatch.setattr(
        plan_module, "parse_model_ref", lambda ref, s: type("Ref", (), {"kind": "endpoint"})()
    )
    path = write_config(tmp_path, examples=str(examples), order="cost", rungs=None)
    plan = plan_decision(load_decision_config(path), settings)
    by_label = {p.spec.label: p for p in plan.rungs}
    larger = by_label["prompt@qwen2.5-coder-1.5b"]
    assert larger.skip is None and larger.model == "qwen2.5-coder-1.5b"
    assert larger.stated_cost == pytest.approx(by_label["prompt"].stated_cost * 2.27, rel=0.01)  # type: ignore[operator]
    costs = [p.stated_cost for p in plan.rungs if p.stated_cost is not None]
    assert costs == sorted(costs)
    off = write_config(tmp_path, examples=str(examples), order="cost", rungs=None, try_larger_model=False)
    assert "prompt@qwen2.5-coder-1.5b" not in [
        p.spec.label for p in plan_decision(load_decision_config(off), settings).rungs
    ]
