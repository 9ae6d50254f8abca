"""The decision report names the training method of its fine-tune rung (``--peft``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.settings import load_settings
from evaluation.decide.report import finetune_method, render_html, render_markdown
from evaluation.decide.result import Decision, Readiness, RungResult

COMMAND = "ladder finetune train --base smollm2-135m --data d --name x-ft --peft {}"


def _decision(method_in_command: str | None, rung_config: dict[str, str] | None = None) -> Decision:
    rungs = [RungResult("prompt", "prompt"), RungResult("finetune", "finetune", config=rung_config or {})]
    command = COMMAND.format(method_in_command) if method_in_command else "ladder finetune train --name x-ft"
    return Decision(
        decision_id="d1",
        created="2026-12-06",
        recommended="finetune",
        name="routing",
        status="met",
        rungs=rungs,
        readiness=Readiness(True, command=command),
    )


def test_the_report_names_the_fine_tune_method() -> None:
    decision = _decision("last-layers")
    assert finetune_method(decision) == "last-layers"
    assert "| **fine-tune method** | last-layers |" in render_markdown(decision)
    assert "<dt>fine-tune method</dt><dd>last-layers</dd>" in render_html(decision)
    assert finetune_method(_decision("full", {"peft": "prompt-tuning"})) == "prompt-tuning", "the rung's own"
    assert finetune_method(_decision(None)) == "lora", "a decision from before the choice trained LoRA"


def test_no_fine_tune_rung_no_method() -> None:
    decision = Decision(
        decision_id="d2",
        created="2026-12-06",
        recommended="prompt",
        name="faq",
        status="met",
        rungs=[RungResult("prompt", "prompt")],
    )
    assert finetune_method(decision) is None and "fine-tune method" not in render_markdown(decision)


def test_the_readiness_command_carries_the_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command a decision recommends trains with the decision's ``peft`` (LoRA by default)."""
    from evaluation.decide import readiness as module
    from tests.evaluation.test_readiness_tokens import config_for, plan

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    (base / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(module, "planned_train_tokens", lambda *args: 1000)
    monkeypatch.setattr(module, "estimates", lambda *args: [{"where": "this machine", "hours": 0.1}])
    for train, method in (({"epochs": 1}, "lora"), ({"epochs": 1, "peft": "last-layers"}, "last-layers")):
        (tmp_path / method).mkdir()
        config = config_for(tmp_path / method, {"general": "none"}, train)
        config.finetune.min_examples = 1
        examples, _, _ = plan(config)
        result = module.readiness(config, load_settings(), examples, 0, str(base), "x-ft")
        assert f"--name x-ft --peft {method} " in result.command
        assert finetune_method(Decision("d", "x", "2026-12-06", "met", "finetune", rungs=[
            RungResult("finetune", "finetune")], readiness=result)) == method  # fmt: skip
