"""The transformers formats: fp32 is the merged folder as it is (linked, not copied, on one
filesystem), bf16 a copy whose weights are stored in bfloat16 and that the backend loads as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.progress import RecordingProgress
from assistant.settings import load_settings
from finetune.deploy.formats import get_format


def _weights_dtypes(folder: Path) -> set[str]:
    from safetensors import safe_open

    dtypes = set()
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            dtypes |= {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118
    return dtypes


def test_fp32_links_every_file_of_the_merged_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    built = get_format("transformers-fp32").build(
        tiny_model_dir, tmp_path / "fp32", RecordingProgress(), load_settings()
    )
    assert built.settings == {"dtype": "float32"} and built.model_ref == str(tmp_path / "fp32")
    names = {p.relative_to(tmp_path / "fp32") for p in built.files}
    assert names == {p.relative_to(tiny_model_dir) for p in tiny_model_dir.rglob("*") if p.is_file()}
    weights = next(tiny_model_dir.glob("*.safetensors"))
    assert (tmp_path / "fp32" / weights.name).stat().st_ino == weights.stat().st_ino


def test_bf16_stores_bfloat16_weights_and_loads_as_bfloat16(tiny_model_dir: Path, tmp_path: Path) -> None:
    from assistant.backends.load import load_backend
    from assistant.settings import load_settings
    from assistant.types import GenParams, Message

    built = get_format("transformers-bf16").build(
        tiny_model_dir, tmp_path / "bf16", RecordingProgress(), load_settings()
    )
    assert built.settings == {"dtype": "bfloat16"}
    assert _weights_dtypes(tmp_path / "bf16") == {"BF16"} and _weights_dtypes(tiny_model_dir) == {"F32"}
    size = sum(p.stat().st_size for p in (tmp_path / "bf16").glob("*.safetensors"))
    assert size < 0.6 * sum(p.stat().st_size for p in tiny_model_dir.glob("*.safetensors"))
    assert (tmp_path / "bf16" / "tokenizer.json").is_file()
    backend = load_backend(built.model_ref, load_settings({"threads": 1, **built.settings}))
    reply = backend.generate([[Message("user", "hello")]], GenParams(max_new_tokens=3))[0]
    assert reply.usage.completion_tokens >= 1
    assert str(next(backend.model.parameters()).dtype) == "torch.bfloat16"  # type: ignore[attr-defined]


def test_a_deployed_adapter_is_merged_and_answers_as_the_adapter_does(
    isolated_home: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """The decision's model is base+adapter: the fp32 artifact is the merge (its scores are the
    PEFT model's), and the manifest pins the adapter by the hash of its files."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from assistant.backends.hf.local import HFLocalBackend
    from assistant.settings import load_settings
    from evaluation.deploy.engine import DeployRequest, run_deploy
    from evaluation.deploy.source import folder_sha256
    from tests.helpers.deploy import store_decision

    settings = load_settings({"threads": 1, "dtype": "float32"})
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    adapter = settings.adapters_dir / "routing"
    lora.save_pretrained(adapter)
    (adapter / "manifest.json").write_text(json.dumps({"base_model": {"ref": str(tiny_model_dir)}}))
    store_decision(tmp_path, settings, f"{tiny_model_dir}+routing")
    deployment = run_deploy(DeployRequest("cases", formats=["transformers-fp32"], isolate=False), settings)
    assert deployment.adapter == "routing" and deployment.adapter_sha256 == folder_sha256(adapter)
    [fp32] = deployment.formats
    merged = HFLocalBackend(Path(fp32.model_ref), settings)
    tuned = HFLocalBackend(tiny_model_dir, settings, adapter=adapter)
    plain = HFLocalBackend(tiny_model_dir, settings)
    prompts, choices = ["hello there", "route this ticket"], ["A", "B", "C"]

    def scores(backend: HFLocalBackend) -> list[float]:
        return [x for row in backend.score_choices(prompts, choices) for x in row]

    assert scores(merged) == pytest.approx(scores(tuned), abs=1e-3)
    assert scores(merged) != pytest.approx(scores(plain), abs=1e-3)
    assert not (settings.home / "deployments" / "cases" / ".source").exists(), "the merge scratch is gone"
