"""finetune/deploy/onnx.py: the missing-engine hint, nothing half-written when the engine is
missing, and (where onnx and onnxscript are installed) an export whose KV-cache graph decodes
like transformers, quantized to int8."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import CapabilityError
from assistant.progress import NullProgress
from assistant.settings import load_settings
from finetune.deploy import onnx as onnx_format


def test_engine_missing_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "onnxscript" else real(name)
    )
    if real("onnx") is None:
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name: None if name in ("onnx", "onnxscript") else real(name)
        )
    hint = onnx_format.engine_missing()
    assert hint is not None and "onnxscript" in hint and "pip install" in hint
    assert "onnxruntime" not in hint.split(":")[0]  # installed with Ladder
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert onnx_format.engine_missing() is None


def test_build_without_the_engine_is_a_capability_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_format, "engine_missing", lambda: "ONNX export needs onnx: pip install onnx")
    with pytest.raises(CapabilityError, match="pip install onnx"):
        onnx_format.build_int8(tmp_path / "source", tmp_path / "out", NullProgress(), load_settings())
    assert not (tmp_path / "out").exists()


def _run(session: object, ids: list[int], past: list[np.ndarray], length: int) -> tuple[np.ndarray, list]:
    feed = {
        "input_ids": np.array([ids], dtype=np.int64),
        "attention_mask": np.ones((1, length + len(ids)), dtype=np.int64),
        "position_ids": np.arange(length, length + len(ids), dtype=np.int64)[None],
    }
    names = [i.name for i in session.get_inputs() if i.name.startswith("past.")]  # type: ignore[attr-defined]
    feed.update(zip(names, past, strict=True))
    logits, *present = session.run(None, feed)  # type: ignore[attr-defined]
    return logits[0, -1], present


NO_EXPORTER = onnx_format.engine_missing()


@pytest.mark.skipif(NO_EXPORTER is not None, reason=str(NO_EXPORTER))
def test_the_int8_build_decodes_incrementally_like_transformers(tiny_model_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForCausalLM

    fp32 = onnx_format.export_with_cache(tiny_model_dir, tmp_path / "fp32" / "model.onnx")
    built = onnx_format.build_int8(tiny_model_dir, tmp_path / "out", NullProgress(), load_settings())
    assert built.model_ref == f"onnx:{tmp_path / 'out'}"
    assert {p.name for p in built.files} >= {"model.onnx", "config.json", "tokenizer.json"}
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no scratch left

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    prompt, nxt = [1, 5, 9, 3], 7
    with torch.inference_mode():
        ref_prompt = model(torch.tensor([prompt])).logits[0, -1].numpy()
        ref_next = model(torch.tensor([[*prompt, nxt]])).logits[0, -1].numpy()
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    empty = [np.zeros((1, config.num_key_value_heads, 0, head_dim), np.float32)] * (
        2 * config.num_hidden_layers
    )
    for path, tol in ((fp32, 1e-4), (tmp_path / "out" / "model.onnx", None)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        first, past = _run(session, prompt, empty, 0)  # a fresh prompt: a past of length 0
        second, _ = _run(session, [nxt], past, len(prompt))  # one step on the cache
        if tol is not None:
            np.testing.assert_allclose(first, ref_prompt, atol=tol)
            np.testing.assert_allclose(second, ref_next, atol=tol)
        else:  # int8: close, not equal; the cache still carries the prompt
            assert np.corrcoef(second, ref_next)[0, 1] > 0.9
