"""Converters from a pack's carried file to the folder Ladder loads, registered by format.

A converter is named by ``"module:function"`` and imported only when a pack is converted
(the GGUF one needs transformers, the E5S1 one numpy and tokenizers). Its function takes
``(source_file, out_dir, spec)`` and returns what ``pack.json`` should record about the
result (an empty mapping when nothing beyond the provenance). The spec is typed ``Any``
because the catalog imports this registry to validate its entries.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Converter:
    format: str
    target: str  # "module:function"
    kind: str  # the kind of pack it makes
    # disk needed while pulling, as a multiple of the carried file (wheels, file, output)
    disk_factor: int
    produces: str  # for the progress line: "safetensors", "a sentence-transformers folder"

    def run(self, source: Path, out_dir: Path, spec: Any) -> dict[str, Any]:
        module, _, function = self.target.partition(":")
        result: dict[str, Any] | None = getattr(importlib.import_module(module), function)(
            source, out_dir, spec
        )
        return dict(result or {})


CONVERTERS: dict[str, Converter] = {}


def register_converter(converter: Converter) -> Converter:
    if converter.format in CONVERTERS:
        raise KeyError(f"a converter for {converter.format!r} is already registered")
    CONVERTERS[converter.format] = converter
    return converter


register_converter(Converter("gguf", "assistant.models.pull:convert_gguf_pack", "llm", 8, "safetensors"))
register_converter(
    Converter("e5s1", "assistant.models.embedders.e5convert:convert_e5s1_pack", "embedder", 10,
              "a sentence-transformers folder")
)  # fmt: skip
