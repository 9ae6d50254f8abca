"""The decision report names the training method of its fine-tune rung (``--peft``)."""

from __future__ import annotations

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
