"""The transformers formats: fp32 is the merged folder as it is (linked, not copied, on one
filesystem), bf16 a copy whose weights are stored in bfloat16 and that the backend loads as such."""

from __future__ import annotations

from pathlib import Path

from assistant.progress import RecordingProgress
from finetune.deploy.formats import get_format


def _weights_dtypes(folder: Path) -> set[str]:
    from safetensors import safe_open

    dtypes = set()
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            dtypes |= {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118
    return dtypes


def test_fp32_links_every_file_of_the_merged_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    built = get_format("transformers-fp32").build(tiny_model_dir, tmp_path / "fp32", RecordingProgress())
    assert built.settings == {"dtype": "float32"} and built.model_ref == str(tmp_path / "fp32")
    names = {p.relative_to(tmp_path / "fp32") for p in built.files}
    assert names == {p.relative_to(tiny_model_dir) for p in tiny_model_dir.rglob("*") if p.is_file()}
    weights = next(tiny_model_dir.glob("*.safetensors"))
    assert (tmp_path / "fp32" / weights.name).stat().st_ino == weights.stat().st_ino


def test_bf16_stores_bfloat16_weights_and_loads_as_bfloat16(tiny_model_dir: Path, tmp_path: Path) -> None:
    from assistant.backends.load import load_backend
    from assistant.settings import load_settings
    from assistant.types import GenParams, Message

    built = get_format("transformers-bf16").build(tiny_model_dir, tmp_path / "bf16", RecordingProgress())
    assert built.settings == {"dtype": "bfloat16"}
    assert _weights_dtypes(tmp_path / "bf16") == {"BF16"} and _weights_dtypes(tiny_model_dir) == {"F32"}
    size = sum(p.stat().st_size for p in (tmp_path / "bf16").glob("*.safetensors"))
    assert size < 0.6 * sum(p.stat().st_size for p in tiny_model_dir.glob("*.safetensors"))
    assert (tmp_path / "bf16" / "tokenizer.json").is_file()
    backend = load_backend(built.model_ref, load_settings({"threads": 1, **built.settings}))
    reply = backend.generate([[Message("user", "hello")]], GenParams(max_new_tokens=3))[0]
    assert reply.usage.completion_tokens >= 1
    assert str(next(backend.model.parameters()).dtype) == "torch.bfloat16"  # type: ignore[attr-defined]
