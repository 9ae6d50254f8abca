"""``ladder finetune export --format peft|merged``: a portable PEFT folder that names its base by
model id (for vLLM ``--enable-lora``), readable files, the vLLM command, a merged config that
transformers 4 reads too, and each training method exported only where that makes sense."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_ft_train_helpers import write_chat_data

from assistant.settings import Settings
from finetune.adapters import upstream_id, write_config_both_ways
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

QUICK = [
    *("--max-steps", "4", "--batch-size", "4", "--lr", "1e-2", "--min-examples", "10"),
    *("--rank", "8", "--threads", "1", "--patience", "0", "--checkpoint-every", "0"),
]


@pytest.fixture(autouse=True)
def strict_umask() -> Iterator[None]:
    """Train and export under umask 077, where files are written 0600 unless made readable."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _train(capsys: pytest.CaptureFixture[str], base: Path, data: Path, name: str, *extra: str) -> None:
    code, _, err = run(["finetune", "train", "--base", str(base), "--data", str(data), "--name", name,
                        *QUICK, *extra], capsys)  # fmt: skip
    assert code == 0, err


def _modes(folder: Path) -> set[tuple[str, int]]:
    found = {(p.name, stat.S_IMODE(p.stat().st_mode)) for p in folder.rglob("*")}
    return found | {(".", stat.S_IMODE(folder.stat().st_mode))}


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_peft_export_names_the_base_by_id_is_readable_and_loads_like_the_adapter(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, isolated_home: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _train(capsys, tiny_model_dir, write_chat_data(tmp_path / "data"), "routing")
    out = tmp_path / "export"
    code, _, err = run(["finetune", "export", "routing", "--out", str(out), "--format", "peft"], capsys)
    assert code == 2 and "no known model id" in err and "--base-id" in err, err
    assert not out.exists()

    code, printed, err = run(["finetune", "export", "routing", "--out", str(out), "--format", "peft",
                              "--base-id", "acme/tiny-llama"], capsys)  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "ladder_export.json"
    ]  # fmt: skip
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "acme/tiny-llama" and config["peft_type"] == "LORA"
    assert _modes(out) == {(".", 0o755)} | {(p.name, 0o644) for p in out.iterdir()}
    assert f"vllm serve acme/tiny-llama --enable-lora --lora-modules routing={out}" in printed

    ids = torch.tensor([[5, 9, 17, 33, 2]])
    registered = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(isolated_home / "adapters" / "routing")
    )
    exported = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out))
    torch.testing.assert_close(_logits(exported, ids), _logits(registered, ids))


def test_merged_export_is_readable_and_its_config_reads_both_ways(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    _train(capsys, tiny_model_dir, write_chat_data(tmp_path / "data"), "m")
    out = tmp_path / "merged"
    code, printed, err = run(["finetune", "export", "m", "--out", str(out)], capsys)
    assert code == 0, err
    assert all(mode == (0o755 if name == "." else 0o644) for name, mode in _modes(out)), _modes(out)
    config = json.loads((out / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] and config["rope_scaling"] is None
    assert f"vllm serve {out} --served-model-name m" in printed


def test_config_both_ways_keeps_a_scaled_rope_for_transformers_4(tmp_path: Path) -> None:
    from transformers import AutoConfig

    rope = {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "rope_parameters": rope}))
    write_config_both_ways(path)
    written = json.loads(path.read_text())
    assert written["rope_theta"] == 500000.0
    assert written["rope_scaling"] == {k: v for k, v in rope.items() if k != "rope_theta"}
    assert written["rope_parameters"] == rope, "transformers 5's key is kept"
    assert AutoConfig.from_pretrained(tmp_path).rope_parameters["rope_theta"] == 500000.0


def test_each_method_exports_where_it_can(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    _train(capsys, tiny_model_dir, data, "whole", "--peft", "full", "--lr", "1e-3")
    code, _, err = run(
        ["finetune", "export", "whole", "--out", str(tmp_path / "a"), "--format", "peft"], capsys
    )
    assert code == 2 and "full fine-tune" in err and "--format merged" in err
    code, _, err = run(["finetune", "export", "whole", "--out", str(tmp_path / "b")], capsys)
    assert code == 0, err
    assert (tmp_path / "b" / "model.safetensors").is_file() and not (
        tmp_path / "b" / "manifest.json"
    ).exists()
    assert json.loads((tmp_path / "b" / "config.json").read_text())["use_cache"] is True

    code, printed, _ = run(["finetune", "info", "whole"], capsys)
    assert code == 0 and "method    full, " in printed and "weights trained (100.00%)" in printed

    _train(capsys, tiny_model_dir, data, "soft", "--peft", "prompt-tuning")
    code, printed, _ = run(["finetune", "info", "soft"], capsys)
    assert code == 0 and "method    prompt-tuning (20 virtual tokens), 640 of " in printed
    code, printed, _ = run(["finetune", "list"], capsys)
    assert "sft · prompt-tuning" in printed and "sft · full" in printed
    code, _, err = run(["finetune", "export", "soft", "--out", str(tmp_path / "c")], capsys)
    assert code == 2 and "cannot be merged" in err and "--format peft" in err
    code, printed, err = run(["finetune", "export", "soft", "--out", str(tmp_path / "d"), "--format", "peft",
                              "--base-id", "acme/tiny"], capsys)  # fmt: skip
    assert code == 0 and "vLLM serves LoRA adapters only" in printed and "vllm serve" not in printed


def test_a_packs_base_is_named_by_its_upstream_id(fast_settings: Settings) -> None:
    assert upstream_id("smollm2-135m", fast_settings) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert upstream_id("qwen2.5-coder-0.5b", fast_settings) == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
