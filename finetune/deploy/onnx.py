"""The ONNX Runtime format: the merged transformers folder as one ONNX graph with a KV cache,
its weights quantized to int8 (dynamic quantization: int8 weights per output channel, the
activations quantized on the fly), served by ONNX Runtime's CPU engine.

The graph takes ``input_ids``, ``attention_mask``, ``position_ids`` and ``past.<i>.key/value``
(``[batch, kv_heads, past, head_dim]``, length 0 for a fresh prompt) and returns the last
position's ``logits`` and ``present.<i>.key/value``, so decoding is incremental (one token per
step), as in transformers' ``generate``. It is exported with ``torch.onnx.export`` (dynamo)
because optimum-onnx pins ``transformers<4.58``; the export needs ``onnx`` and ``onnxscript``
(the engine only ``onnxruntime``).

Measured in benchmarks/onnx_int8.py and **not registered** as a format: dynamic int8 decodes about
3x transformers bf16 on the demo pack but changes half its greedy outputs from the first token and
breaks smollm2-135m (docs/onnx.md). The export is kept for a weight-only ONNX format later.

Everything is written under temporary names in ``out`` and renamed at the end, so a failure
halfway leaves no ``model.onnx`` behind.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from assistant.errors import CapabilityError
from assistant.progress import Progress
from assistant.settings import Settings
from finetune.deploy.formats import Built

__all__ = ["INPUTS", "build_int8", "engine_missing", "export_with_cache", "quantize_int8"]

ENGINE_HINT = "pip install onnx==1.23.2 onnxscript==0.7.2 (onnxruntime is installed with Ladder)"
INPUTS = ("input_ids", "attention_mask", "position_ids")
# What the served folder keeps of the merged one besides the weights: the backend's tokenizer.
SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
SIDE_GLOBS = ("*.jinja", "special_tokens_map.json", "pack.json")


def engine_missing() -> str | None:
    """None when the exporter and the engine import, else how to install them."""
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    return f"ONNX export needs {', '.join(missing)}: {ENGINE_HINT}" if missing else None


def export_with_cache(source: Path, target: Path) -> Path:
    """``source`` (a transformers causal-LM folder) as one float32 ONNX graph with a KV cache at
    ``target`` (its weights in ``target.name + '.data'`` beside it)."""
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    config = model.config
    layers = config.num_hidden_layers
    heads = config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    class WithCache(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> Any:
            cache = DynamicCache(config=config)
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            result = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            flat = []
            for layer in result.past_key_values.layers:
                flat += [layer.keys, layer.values]
            return (result.logits, *flat)

    # Example shapes only: every sequence axis is dynamic (a past of length 0 works at run time).
    seq, past_len = 4, 3
    example = (
        torch.ones(1, seq, dtype=torch.long),
        torch.ones(1, past_len + seq, dtype=torch.long),
        torch.arange(past_len, past_len + seq)[None],
        *[torch.zeros(1, heads, past_len, head_dim) for _ in range(2 * layers)],
    )
    past_names = [f"past.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    s, p, t = torch.export.Dim("seq"), torch.export.Dim("past"), torch.export.Dim("total")
    dynamic: list[Any] = [{1: s}, {1: t}, {1: s}, tuple({2: p} for _ in past_names)]
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        WithCache().eval(),
        example,
        str(target),
        input_names=[*INPUTS, *past_names],
        output_names=["logits", *present_names],
        dynamic_shapes=dynamic,
        dynamo=True,
        external_data=True,
        optimize=True,
    )
    return target


def quantize_int8(fp32: Path, target: Path, per_channel: bool = True) -> Path:
    """Dynamic int8 quantization of every MatMul with constant weights (and the embedding
    Gather); per output channel by default (per-tensor loses much more, docs/onnx.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        use_external_data_format=False,
        extra_options={"MatMulConstBOnly": True},
    )
    return target


def build_int8(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """``out/model.onnx`` (int8, per channel) and the tokenizer files the backend needs."""
    hint = engine_missing()
    if hint:
        raise CapabilityError(hint)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".onnx-") as scratch:
        progress.start("onnx-int8: export with a KV cache (float32)")
        fp32 = export_with_cache(source, Path(scratch) / "fp32" / "model.onnx")
        progress.start("onnx-int8: quantize to int8 (per channel)")
        partial = quantize_int8(fp32, Path(scratch) / "model.onnx")
        files = [p for p in source.iterdir() if p.name in SIDE_FILES or any(p.match(g) for g in SIDE_GLOBS)]
        for file in files:
            shutil.copy2(file, out / file.name)
        partial.replace(out / "model.onnx")
    built = tuple(sorted([out / "model.onnx", *(out / f.name for f in files)]))
    return Built(
        model_ref=f"onnx:{out}", files=built, notes=("int8 weights per channel, dynamic activations",)
    )
