"""Training methods beside LoRA (``--peft``): prompt tuning, LoRA on the last layers, full
fine-tuning. Each trains (val loss falls), trains only what it should, survives a crash and
resumes to the same weights, publishes a folder that ``+<name>`` loads, and names itself in
the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from test_ft_train_helpers import quick_config, write_chat_data
from test_ft_train_resume import CrashAt

from assistant.backends.hf.local import HFLocalBackend
from assistant.errors import ConfigError
from assistant.models.refs import parse_model_ref
from assistant.settings import Settings
from finetune import adapters
from finetune.train.batches import collate, loss_sum
from finetune.train.config import TrainConfig
from finetune.train.methods import build_model, last_layer_indices
from finetune.train.run import TrainRequest, train

# Each method at the learning rate of its kind (prompt tuning needs a far larger one).
LR = {"lora": 1e-2, "last-layers": 1e-2, "prompt-tuning": 1e-1, "full": 3e-3}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    name = "model.safetensors" if (folder / "model.safetensors").is_file() else "adapter_model.safetensors"
    return load_file(str(folder / name))


def _train(base: Path, data: Path, name: str, method: str, settings: Settings, **changes: Any) -> Any:
    config = quick_config(peft=method, learning_rate=LR[method], **changes)
    return train(TrainRequest(str(base), data, name, config), settings)


@pytest.mark.parametrize("method", ["prompt-tuning", "last-layers", "full"])
def test_each_method_trains_publishes_and_loads_by_name(
    method: str, tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    result = _train(tiny_model_dir, data, method, method, fast_settings)
    res, peft = result.manifest["results"], result.manifest["peft"]
    assert res["val_loss"] < res["first_val_loss"] - 0.05, res
    assert peft["method"] == method and adapters.method_of(result.manifest) == method
    assert 0 < peft["trainable_parameters"] <= peft["total_parameters"]
    folder = adapters.adapter_dir(method, fast_settings)
    weights = _weights(folder)
    if method == "full":
        assert peft["trainable_parameters"] == peft["total_parameters"]
        assert not (folder / "adapter_config.json").exists() and (folder / "tokenizer.json").is_file()
        assert adapters.exists(method, fast_settings)
        assert [a["name"] for a in adapters.list_adapters(fast_settings)] == [method]
    elif method == "last-layers":
        assert peft["layers"] == [1] and peft["of_layers"] == 2, "the last quarter of 2 layers: 1"
        assert weights and all(".layers.1." in key for key in weights), sorted(weights)
    else:
        assert result.manifest["hyperparameters"]["batching"] == "grouped", "packed is refused"
        assert list(weights) == ["prompt_embeddings"] and weights["prompt_embeddings"].shape[0] == 20

    ref = parse_model_ref(f"{tiny_model_dir}+{method}", fast_settings)
    tuned = HFLocalBackend.from_ref(ref, fast_settings)
    plain = HFLocalBackend(tiny_model_dir, fast_settings)
    assert tuned.adapter_kind == {"full": "full", "last-layers": "lora"}.get(method, method)
    prompts, choices = ["Label this: the a red", "Label this: is blue"], [" alpha", " beta", " gamma"]
    tuned_scores = [x for row in tuned.score_choices(prompts, choices) for x in row]
    plain_scores = [x for row in plain.score_choices(prompts, choices) for x in row]
    assert max(abs(a - b) for a, b in zip(tuned_scores, plain_scores, strict=True)) > 0.01


def test_prompt_tuning_loss_equals_peft_with_labels(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The training loss of a grouped batch (only the targets' logits computed, the mask widened
    past the virtual tokens) is the cross-entropy of peft's full forward at the same positions."""
    from finetune.train.data import encode_records, load_data

    data = load_data(write_chat_data(tmp_path / "data"), "sft", 10)
    config = TrainConfig(peft="prompt-tuning", min_examples=10)
    model, tokenizer = build_model(tiny_model_dir, config, "cpu", torch.float32)
    with torch.no_grad():  # away from the text initialisation, so the prompt matters
        embedding = model.prompt_encoder["default"].embedding.weight
        embedding.add_(torch.randn_like(embedding))
    examples = encode_records(tokenizer, data.train[:4], 64).examples
    batch = collate(examples, "grouped", 0)
    with torch.no_grad():
        got = float(loss_sum(model, batch)) / batch.n_targets
        logits = model(**batch.inputs).logits[:, 20:, :]  # every position; the 20 virtual ones dropped
    keep = batch.targets != -100
    expected = float(torch.nn.functional.cross_entropy(logits[keep], batch.targets[keep]))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("method", ["prompt-tuning", "full"])
def test_a_crashed_run_of_each_method_resumes_to_the_same_weights(
    method: str, tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    changes = {"max_steps": 12, "checkpoint_every": 5, "eval_every": 4}
    _train(tiny_model_dir, data, "straight", method, fast_settings, **changes)
    config = quick_config(peft=method, learning_rate=LR[method], **changes)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(TrainRequest(str(tiny_model_dir), data, "crashed", config), fast_settings, progress=CrashAt(7))
    train(TrainRequest(str(tiny_model_dir), data, "crashed", config, resume=True), fast_settings)
    straight = _weights(adapters.adapter_dir("straight", fast_settings))
    crashed = _weights(adapters.adapter_dir("crashed", fast_settings))
    assert sorted(straight) == sorted(crashed)
    for name in straight:
        torch.testing.assert_close(crashed[name], straight[name], rtol=1e-5, atol=1e-6)


def test_method_settings_are_checked() -> None:
    assert last_layer_indices(30, None) == list(range(22, 30)), "a quarter of 30, rounded up: 8"
    assert last_layer_indices(4, 10) == [0, 1, 2, 3]
    assert TrainConfig(peft="prompt-tuning", batching="padded").batching == "padded"
    with pytest.raises(ConfigError, match="last_layers must be > 0"):
        TrainConfig(peft="last-layers", last_layers=0)
    with pytest.raises(ConfigError, match="num_virtual_tokens must be > 0"):
        TrainConfig(peft="prompt-tuning", num_virtual_tokens=0)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--peft", "full"], {"peft": "full", "learning_rate": 5e-5}),
        (
            ["--peft", "prompt-tuning", "--virtual-tokens", "8"],
            {"learning_rate": 3e-2, "num_virtual_tokens": 8},
        ),
        (["--peft", "last-layers", "--last-layers", "3"], {"learning_rate": 2e-4, "last_layers": 3}),
        (["--peft", "full", "--lr", "1e-3"], {"learning_rate": 1e-3}),
    ],
)
def test_the_cli_passes_each_methods_settings_and_default_learning_rate(
    args: list[str], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--peft M`` without ``--lr`` trains at M's own rate (full at 2e-4 would wreck the model)."""
    from typer.testing import CliRunner

    from ui.cli.app import app

    seen: dict[str, Any] = {}

    def stop(request: TrainRequest, settings: Settings) -> None:
        seen.update(request.config.to_dict())
        raise ConfigError("stopped by the test")

    monkeypatch.setattr("finetune.train.run.prepare", stop)
    result = CliRunner().invoke(app, ["finetune", "train", "--name", "m", *args])
    assert "stopped by the test" in str(result.exception), result.output
    assert {key: seen[key] for key in expected} == expected
