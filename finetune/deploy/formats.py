"""The serving formats ``ladder deploy`` can build, in one registry.

A format turns the decision's model, written as one merged transformers folder (the pack with
its adapter merged in, float32), into an artifact a Ladder backend can load, and says how to
load it: ``Built.model_ref`` is a model reference (``assistant.models.refs``) and
``Built.settings`` the settings it needs (e.g. ``{"dtype": "bfloat16"}``). Builders are
registered as ``"module:function"`` strings so that listing the formats imports no engine.

``rank`` orders the formats from cheapest to dearest to serve (what a deployment tries first);
``engine_missing`` says, for a format whose engine is not installed, how to install it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.progress import Progress
from assistant.registry import Registry
from assistant.settings import Settings


@dataclass(frozen=True)
class Built:
    """What a builder wrote into its output folder."""

    model_ref: str  # e.g. a folder path or "gguf:/abs/path/model-q4_k_m.gguf"
    files: tuple[Path, ...]  # every file the artifact consists of (hashed into the manifest)
    settings: dict[str, Any] = field(default_factory=dict)  # settings overrides to load it
    notes: tuple[str, ...] = ()  # facts worth reporting (e.g. tensors that fell back to q5_0)


# build(source: merged transformers folder, out: empty folder to write into, progress, settings) -> Built
Builder = Callable[[Path, Path, Progress, Settings], Built]


@dataclass(frozen=True)
class FormatSpec:
    name: str  # e.g. "gguf-q4_k_m"
    engine: str  # e.g. "llama.cpp", "transformers"
    rank: int  # cheapest first
    builder: str  # "module:function" implementing Builder
    # "module:function" returning None when the engine is importable, else a one-line install hint
    engine_check: str | None = None
    description: str = ""

    def build(self, source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
        fn: Builder = _resolve(self.builder)
        return fn(source, out, progress, settings)

    def engine_missing(self) -> str | None:
        if self.engine_check is None:
            return None
        check: Callable[[], str | None] = _resolve(self.engine_check)
        return check()


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


FORMATS: Registry[FormatSpec] = Registry("deploy format")


def register_format(spec: FormatSpec) -> None:
    FORMATS.register(spec.name, spec)


def format_names() -> list[str]:
    """Every registered format, cheapest first."""
    return sorted(FORMATS, key=lambda name: (FORMATS.get(name).rank, name))


def get_format(name: str) -> FormatSpec:
    return FORMATS.get(name)


# The built-in formats, cheapest to serve first. The modules are imported only when one is built.
_GGUF = "finetune.deploy.gguf"
_CHECK = f"{_GGUF}:engine_missing"
_HF = "finetune.deploy.hf"
for _spec in (
    FormatSpec("gguf-q4_k_m", "llama.cpp", 10, f"{_GGUF}:build_q4_k_m", _CHECK, "llama.cpp, 4-bit"),
    FormatSpec("gguf-q8_0", "llama.cpp", 20, f"{_GGUF}:build_q8_0", _CHECK, "llama.cpp, 8-bit"),
    FormatSpec("transformers-bf16", "transformers", 30, f"{_HF}:build_bf16", None, "transformers, bfloat16"),
    FormatSpec("transformers-fp32", "transformers", 40, f"{_HF}:build_fp32", None, "transformers, float32"),
):
    register_format(_spec)
