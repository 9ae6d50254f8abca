"""The fine-tuning rung end to end on a tiny model built in code: the cheaper rung misses, the
decision trains a LoRA adapter, evaluates it on dev, test and the general suite (forgetting
check), fills the adapter's manifest, and a re-run neither trains nor calls a model again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.settings import Settings
from evaluation.decide.engine import load_decision_config, run_decision
from finetune.store import TrainingStore
from tests.helpers.decide import LABELS, case_text, rung, write_config, write_suite


def write_training(folder: Path, n_train: int = 60, n_val: int = 8) -> Path:
    folder.mkdir(parents=True)
    for split, count in (("train", n_train), ("val", n_val)):
        rows = [
            {
                "messages": [
                    {"role": "user", "content": case_text(f"train{split}", i)},
                    {"role": "assistant", "content": LABELS[i % 4]},
                ]
            }
            for i in range(count)
        ]
        (folder / f"{split}.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8"
        )
    return folder


@pytest.mark.parametrize("allow", [False, True])
def test_escalates_to_a_lora_adapter_only_when_allowed(
    allow: bool, tiny_model_dir: Path, fast_settings: Settings, tmp_path: Path
) -> None:
    data = write_training(tmp_path / "data")
    write_suite(tmp_path, "general", 4)
    short = {"max_new_tokens": 3}
    path = write_config(
        tmp_path,
        n_dev=8,
        n_test=4,
        model=str(tiny_model_dir),
        allow_finetune=allow,
        suites={"dev": "dev.yaml", "test": "test.yaml", "general": "general.yaml"},
        rungs=[rung("prompt", **short), "finetune"],
        finetune={
            "data": str(data),
            "adapter": "cases-ft",
            "min_examples": 50,
            "strategy": {"strategy": "prompt", **short},
            "train": {
                "max_steps": 4,
                "batch_size": 8,
                "rank": 4,
                "alpha": 8,
                "learning_rate": 0.01,
                "min_examples": 10,
                "checkpoint_every": 0,
            },
        },
    )
    decision = run_decision(load_decision_config(path), fast_settings)
    finetune = decision.rung("finetune")
    assert decision.rung("prompt").state == "evaluated" and not decision.rung("prompt").meets
    ready = decision.readiness
    assert ready is not None and ready.ready and ready.examples == 60
    assert "ladder finetune train" in ready.command and "--name cases-ft" in ready.command
    if not allow:
        assert finetune.state == "recommended_only" and "allow_finetune" in finetune.note
        assert not (fast_settings.adapters_dir / "cases-ft").exists()
        assert any(
            "Fine-tuning is the next rung and the data is ready" in line for line in _explain(decision)
        )
        return
    assert finetune.state == "evaluated" and finetune.model == f"{tiny_model_dir}+cases-ft"
    assert finetune.dev is not None and finetune.dev.items == 8 and finetune.test is not None
    assert finetune.general is not None and decision.forgetting is not None
    assert decision.forgetting.metric == "exact_match" and decision.forgetting.max_drop == 0.05
    manifest = json.loads(
        (fast_settings.adapters_dir / "cases-ft" / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["results"]["steps"] == 4
    assert [e["split"] for e in manifest["evaluations"]] == ["dev", "test", "general"]
    assert all(e["decision"] == decision.decision_id for e in manifest["evaluations"])
    assert decision.gaps is not None and decision.model_calls > 0

    again = run_decision(load_decision_config(path), fast_settings)
    with TrainingStore(fast_settings.db_path) as store:
        assert len(store.list_runs("cases-ft")) == 1, "the adapter is reused, not trained again"
    assert again.model_calls == 0, "every answer, the adapter's included, comes from the cache"
    again_dev = again.rung("finetune").dev
    assert again_dev is not None and again_dev.metrics == finetune.dev.metrics


def _explain(decision: object) -> list[str]:
    from evaluation.decide.text import explain

    return explain(decision)  # type: ignore[arg-type]
