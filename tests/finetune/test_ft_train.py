"""Training on the tiny model: the loss falls and LoRA weights move, the manifest, the store,
loading by name, overwrite refusal, bad input that writes nothing, cpt, divergence, early stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from test_ft_train_helpers import quick_config, write_chat_data, write_text_data

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.settings import Settings
from finetune.adapters import AdapterExists, adapter_dir
from finetune.store import TrainingStore
from finetune.train.data import TrainDataError
from finetune.train.run import TrainingDiverged, TrainRequest, train


def _lora(name: str, settings: Settings) -> dict[str, torch.Tensor]:
    return load_file(str(adapter_dir(name, settings) / "adapter_model.safetensors"))


def test_sft_overfits_loss_falls_lora_weights_move_and_metrics_are_stored(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    result = train(
        TrainRequest(str(tiny_model_dir), data, "colours", quick_config(max_steps=40)), fast_settings
    )
    res = result.manifest["results"]
    assert result.status == "complete" and res["steps"] == 40
    assert res["train_loss"] < 0.3 * res["first_train_loss"], res
    assert res["val_loss"] < 0.3 * res["first_val_loss"], res
    weights = _lora("colours", fast_settings)
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(t.abs().max() > 0 for t in lora_b), "LoRA B starts at zero and must have moved"
    assert any("q_proj" in n for n in weights) and any("down_proj" in n for n in weights), "all-linear"
    assert not (fast_settings.adapters_dir / ".work" / "colours").exists(), "checkpoints cleaned up"
    with TrainingStore(fast_settings.db_path) as store:
        (run,) = store.list_runs("colours")
        assert run.status == "complete" and run.step == 40 and run.verdict == "converging"
        losses = store.series(run.run_id, "train_loss")
        assert [s for s, _ in losses] == list(range(1, 41))
        assert losses[-1][1] == pytest.approx(res["last_train_loss"])
        assert [s for s, _ in store.series(run.run_id, "val_loss")] == [0, 10, 20, 30, 40]
        lrs = [v for _, v in store.series(run.run_id, "lr")]
        assert lrs[0] == 0 and max(lrs) == pytest.approx(1e-2) and lrs[-1] < 1e-3  # warmup, then cosine
        assert all(v > 0 for _, v in store.series(run.run_id, "tokens_per_s"))
        assert run.summary is not None and run.summary["val_loss"] == res["val_loss"]


def test_manifest_records_base_data_hyperparameters_results_and_device(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    config = quick_config(max_steps=12)
    train(TrainRequest(str(tiny_model_dir), data, "m1", config), fast_settings)
    manifest = json.loads((adapter_dir("m1", fast_settings) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "m1" and manifest["mode"] == "sft" and manifest["evaluations"] == []
    base = manifest["base_model"]
    assert base["ref"] == str(tiny_model_dir) and base["kind"] == "folder" and len(base["hash"]) == 64
    assert manifest["data"]["data_hash"] == "hash-0-60", "taken from the data folder's manifest"
    assert manifest["data"]["report"] == {"examples": 72}
    assert manifest["data"]["train_examples"] == 60 and manifest["data"]["val_examples"] == 12
    assert manifest["hyperparameters"] == config.to_dict()
    assert manifest["device"] == "cpu" and manifest["dtype"] == "float32" and manifest["threads"] == 1
    assert manifest["wall_time_s"] > 0 and manifest["results"]["tokens_seen"] > 0
    assert set(manifest["results"]) >= {"train_loss", "val_loss", "steps", "best_step", "tokens_per_s"}
    adapter_config = json.loads((adapter_dir("m1", fast_settings) / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16


def test_the_adapter_loads_by_name_through_model_references(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    from peft import PeftModel

    from assistant.backends.load import load_backend
    from assistant.types import GenParams, Message

    data = write_chat_data(tmp_path / "data")
    train(TrainRequest(str(tiny_model_dir), data, "named", quick_config(max_steps=40)), fast_settings)
    tuned = load_backend(f"{tiny_model_dir}+named", fast_settings)
    assert isinstance(tuned.model, PeftModel)  # type: ignore[attr-defined]
    (completion,) = tuned.generate([[Message("user", "Label this: the a blue")]], GenParams(max_new_tokens=8))
    assert completion.text.strip() == "beta", "the tiny model learnt the colour -> label mapping"


def test_an_existing_name_is_refused_before_training_unless_overwrite(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    train(TrainRequest(str(tiny_model_dir), data, "taken", quick_config(max_steps=3)), fast_settings)
    weights = adapter_dir("taken", fast_settings) / "adapter_model.safetensors"
    before = weights.stat().st_mtime_ns
    with pytest.raises(AdapterExists, match="an adapter named 'taken' exists"):
        train(TrainRequest(str(tiny_model_dir), data, "taken", quick_config(max_steps=3)), fast_settings)
    assert weights.stat().st_mtime_ns == before
    result = train(
        TrainRequest(str(tiny_model_dir), data, "taken", quick_config(max_steps=4), overwrite=True),
        fast_settings,
    )
    assert result.manifest["results"]["steps"] == 4
    with TrainingStore(fast_settings.db_path) as store:
        assert len(store.list_runs("taken")) == 2


@pytest.mark.parametrize(
    ("base", "mode", "error", "message"),
    [
        ("no-such-model", "sft", ModelNotFoundError, "unknown model 'no-such-model'"),
        ("openai:gpt@http://127.0.0.1:9/v1", "sft", ConfigError, "fine-tuning needs a local model"),
        ("fake", "sft", ConfigError, "fine-tuning needs a local model"),
        (None, "cpt", TrainDataError, "a chat record, but --mode cpt"),
    ],
)
def test_bad_input_fails_before_anything_is_written(
    tiny_model_dir: Path,
    tmp_path: Path,
    fast_settings: Settings,
    base: str | None,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    data = write_chat_data(tmp_path / "data")
    request = TrainRequest(base or str(tiny_model_dir), data, "bad", quick_config(mode=mode))
    with pytest.raises(error, match=message):
        train(request, fast_settings)
    assert not fast_settings.home.exists() or not any(fast_settings.home.rglob("*"))


def test_too_few_examples_and_malformed_lines_write_nothing(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data", n_train=20)
    with pytest.raises(TrainDataError, match="has 20 training examples; at least 50"):
        train(TrainRequest(str(tiny_model_dir), data, "few", quick_config(min_examples=50)), fast_settings)
    with (data / "val.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"messages": "oops"}\n')
    with pytest.raises(TrainDataError, match=r"val.jsonl:13: messages must be a non-empty list"):
        train(TrainRequest(str(tiny_model_dir), data, "few", quick_config()), fast_settings)
    with pytest.raises(ConfigError, match="bad adapter name"):
        train(TrainRequest(str(tiny_model_dir), data, "../escape", quick_config()), fast_settings)
    assert not fast_settings.home.exists() or not any(fast_settings.home.rglob("*"))


def test_continued_pretraining_on_text_lowers_the_loss(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_text_data(tmp_path / "text")
    config = quick_config(mode="cpt", max_steps=None, epochs=None, learning_rate=5e-3)
    assert config.epochs == 1.0, "cpt defaults to one epoch"
    result = train(TrainRequest(str(tiny_model_dir), data, "cpt", config), fast_settings)
    res = result.manifest["results"]
    assert res["steps"] == 8 and res["epochs"] == 1.0  # 30 examples, batch 4
    assert res["last_val_loss"] < res["first_val_loss"] and res["train_loss"] < res["first_train_loss"]
    assert result.manifest["mode"] == "cpt"


def test_a_diverging_run_stops_publishes_nothing_and_says_why(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    config = quick_config(max_steps=60, learning_rate=50.0, warmup_ratio=0.0, max_grad_norm=1e9)
    with pytest.raises(TrainingDiverged, match=r"training stopped at step .*(diverging|became nan)") as info:
        train(TrainRequest(str(tiny_model_dir), data, "boom", config), fast_settings)
    assert "lower --lr" in str(info.value.hint)
    assert not adapter_dir("boom", fast_settings).exists()
    with TrainingStore(fast_settings.db_path) as store:
        (run,) = store.list_runs("boom")
        assert run.status == "diverged" and run.verdict == "diverging" and run.step < 60


@pytest.mark.parametrize("val_improves", [True, False])
def test_val_loss_that_still_improves_overrules_a_diverging_train_loss(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    val_improves: bool,
) -> None:  # fmt: skip
    """The monitor calls the train loss "diverging" from step 6 on (as it can for small mixed
    batches); training goes on while each val loss is the best so far, and stops at the first
    val check that is not."""
    from finetune.train import loop as train_loop
    from finetune.train import monitor

    real = monitor.diagnose

    def noisy(losses: Any, config: Any = None) -> monitor.Diagnosis:
        if len(losses) >= 6:
            return monitor.Diagnosis(monitor.DIVERGING, "loss has risen (scripted)")
        return real(losses, config or monitor.MonitorConfig())

    calls: list[int] = []

    def val_loss(*_args: Any) -> float:
        calls.append(1)
        return 1.0 / len(calls) if val_improves or len(calls) <= 2 else 1.0 + len(calls)

    monkeypatch.setattr(monitor, "diagnose", noisy)
    monkeypatch.setattr(train_loop, "evaluate_loss", val_loss)
    data = write_chat_data(tmp_path / "data")
    config = quick_config(max_steps=12, eval_every=4, patience=0)
    if val_improves:
        result = train(TrainRequest(str(tiny_model_dir), data, "noisy", config), fast_settings)
        assert result.status == "complete" and result.manifest["results"]["steps"] == 12
        return
    with pytest.raises(TrainingDiverged):
        train(TrainRequest(str(tiny_model_dir), data, "noisy", config), fast_settings)
    with TrainingStore(fast_settings.db_path) as store:
        (run,) = store.list_runs("noisy")
        assert run.status == "diverged" and run.step == 9, "stopped the step after the val check at 8"


def test_early_stopping_keeps_the_best_weights(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    # validation answers contradict training: val loss rises once the mapping is learnt
    swapped = (data / "val.jsonl").read_text(encoding="utf-8")
    swapped = swapped.replace('"alpha"', '"X"').replace('"beta"', '"alpha"').replace('"X"', '"beta"')
    (data / "val.jsonl").write_text(swapped, encoding="utf-8")
    config = quick_config(max_steps=60, eval_every=2, patience=2, learning_rate=2e-2)
    result = train(TrainRequest(str(tiny_model_dir), data, "early", config), fast_settings)
    res = result.manifest["results"]
    assert result.status == "early_stopped" and res["steps"] < 60
    with TrainingStore(fast_settings.db_path) as store:
        (run,) = store.list_runs("early")
        series = store.series(run.run_id, "val_loss")
    best_step, best = min(series, key=lambda item: item[1])
    assert res["val_loss"] == pytest.approx(best) and res["best_step"] == best_step
    assert [s for s, _ in series][-1] - best_step == 2 * 2  # patience evaluations, every 2 steps
    assert run.status == "early_stopped"


def test_gradient_accumulation_equals_a_bigger_batch(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    train(
        TrainRequest(str(tiny_model_dir), data, "big", quick_config(max_steps=4, batch_size=8)), fast_settings
    )
    accumulated = quick_config(max_steps=4, batch_size=4, grad_accum=2, batching="padded")
    train(TrainRequest(str(tiny_model_dir), data, "acc", accumulated), fast_settings)
    big, acc = _lora("big", fast_settings), _lora("acc", fast_settings)
    assert big.keys() == acc.keys()
    for name in big:
        torch.testing.assert_close(big[name], acc[name], rtol=1e-3, atol=1e-5)  # summation order only
