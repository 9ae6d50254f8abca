"""The transformers formats: the merged folder as it is (float32), and a bfloat16 copy.

Both are folders the ``hf_local`` backend loads by path. ``transformers-fp32`` links the source's
files into the output (a hard link costs no disk when both sit on one filesystem; otherwise a
copy), so a deployment of a pack with no adapter does not hold a second 2.5 GB copy of it.
``transformers-bf16`` rewrites the weights in bfloat16 (half the bytes) and says, in
``Built.settings``, that the backend must load them as such.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from assistant.progress import Progress
from assistant.settings import Settings
from finetune.deploy.formats import Built

# What a merged folder holds besides the weights: config, tokenizer, chat template, provenance.
WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def _files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.rglob("*") if p.is_file()))


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: a real copy
        shutil.copy2(source, target)


def build_fp32(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """The merged transformers folder as it is, loaded in float32."""
    progress.note(f"transformers-fp32: linking {source.name}")
    out.mkdir(parents=True, exist_ok=True)
    for file in _files(source):
        _link_or_copy(file, out / file.relative_to(source))
    return Built(model_ref=str(out), files=_files(out), settings={"dtype": "float32"})


def _is_weights(path: Path, root: Path) -> bool:
    relative = path.relative_to(root)
    return any(relative.match(pattern) for pattern in WEIGHTS)


def build_bf16(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """A copy of the merged folder with its weights stored in bfloat16."""
    import torch
    from transformers import AutoModelForCausalLM

    progress.note(f"transformers-bf16: writing {source.name} in bfloat16")
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    del model
    written = {p.relative_to(out) for p in _files(out)}
    for file in _files(source):  # tokenizer, chat template, provenance: as they are
        relative = file.relative_to(source)
        if relative not in written and not _is_weights(file, source):
            _link_or_copy(file, out / relative)
    return Built(model_ref=str(out), files=_files(out), settings={"dtype": "bfloat16"})
