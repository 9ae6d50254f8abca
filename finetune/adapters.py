"""The adapter registry: ``LADDER_HOME/adapters/<name>/``, each a PEFT folder with a manifest.

An adapter folder is what ``PeftModel.from_pretrained`` reads (``adapter_config.json``,
``adapter_model.safetensors``), so any strategy uses it by name: ``--model base+name``.
``manifest.json`` beside it records how it was made: the base model reference and the hash of
its files, the data (hash and report), the hyperparameters, the final losses, the wall time
and device, and ``evaluations``, a list the evaluation engine appends to.

``export`` merges an adapter into its base and writes a standalone transformers folder
(safetensors, config, tokenizer, chat template) that transformers, vLLM or ``--model
<folder>`` load with no PEFT at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.progress import NullProgress, Progress
from assistant.settings import Settings

MANIFEST = "manifest.json"
WORK_DIR = ".work"  # checkpoints of adapters being trained: adapters/.work/<name>/


class AdapterExists(ConfigError):
    """An adapter of that name is already registered."""


def check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or "+" in name or name != name.strip():
        raise ConfigError(
            f"bad adapter name {name!r}",
            hint="use letters, digits, '-', '_' or '.', not starting with '.' (no '/', '+' or spaces)",
        )
    return name


def adapter_dir(name: str, settings: Settings) -> Path:
    return settings.adapters_dir / check_name(name)


def work_dir(name: str, settings: Settings) -> Path:
    return settings.adapters_dir / WORK_DIR / check_name(name)


def exists(name: str, settings: Settings) -> bool:
    return (adapter_dir(name, settings) / "adapter_config.json").is_file()


def read_manifest(name: str, settings: Settings) -> dict[str, Any]:
    folder = adapter_dir(name, settings)
    if not (folder / "adapter_config.json").is_file():
        known = ", ".join(a["name"] for a in list_adapters(settings)) or "none"
        raise ModelNotFoundError(f"no adapter named {name!r}", hint=f"adapters: {known}")
    path = folder / MANIFEST
    if not path.is_file():
        return {"name": name, "evaluations": []}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / f".{MANIFEST}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def add_evaluation(name: str, settings: Settings, evaluation: dict[str, Any]) -> None:
    """For the evaluation engine: append one result (run id, suite, metrics) to the manifest."""
    manifest = read_manifest(name, settings)
    manifest.setdefault("evaluations", []).append(evaluation)
    write_manifest(adapter_dir(name, settings), manifest)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_adapters(settings: Settings) -> list[dict[str, Any]]:
    """Every registered adapter's manifest (plus ``size_bytes``), newest first."""
    root = settings.adapters_dir
    if not root.is_dir():
        return []
    out = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not (folder / "adapter_config.json").is_file():
            continue
        manifest = read_manifest(folder.name, settings)
        manifest["name"] = folder.name
        manifest["size_bytes"] = folder_size(folder)
        out.append(manifest)
    return sorted(out, key=lambda m: str(m.get("created", "")), reverse=True)


def remove_adapter(name: str, settings: Settings) -> bool:
    """Delete an adapter and any unfinished training of that name; False if there was none."""
    found = False
    for folder in (adapter_dir(name, settings), work_dir(name, settings)):
        if folder.exists():
            shutil.rmtree(folder)
            found = True
    return found


def publish(tmp: Path, name: str, settings: Settings) -> Path:
    """Move a finished adapter folder into place, replacing an older one of the same name."""
    final = adapter_dir(name, settings)
    if final.exists():
        old = final.with_name(f".old-{name}-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


# ---- the base model ---------------------------------------------------------------------------
def base_model_identity(path: Path) -> dict[str, Any]:
    """What pins the base model's weights: a pack's provenance (with its GGUF SHA-256), or a
    fingerprint of a folder's files (names, sizes, modification times, config.json)."""
    pack_json = path / "pack.json"
    if pack_json.is_file():
        text = pack_json.read_bytes()
        info = json.loads(text)
        return {
            "kind": "pack",
            "gguf_sha256": info.get("gguf_sha256"),
            "hash": hashlib.sha256(text).hexdigest(),
        }
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    if (path / "config.json").is_file():
        digest.update((path / "config.json").read_bytes())
    return {"kind": "folder", "hash": digest.hexdigest()}


def resolve_base(reference: str, settings: Settings) -> tuple[str, Path]:
    """A base model reference (pack name or folder) as (reference, local folder)."""
    from assistant.models.refs import parse_model_ref

    ref = parse_model_ref(reference, settings)
    if ref.kind in ("openai", "fake"):
        raise ConfigError(
            f"fine-tuning needs a local model, not {ref.text!r}",
            hint="give a pack name (`ladder models list`) or a transformers folder",
        )
    if ref.adapter is not None:
        raise ConfigError(
            f"the base model {ref.text!r} carries an adapter", hint="train on the base model alone"
        )
    return ref.text, ref.local_folder(settings)


# ---- export -----------------------------------------------------------------------------------
def export_adapter(
    name: str, out: Path, settings: Settings, *, overwrite: bool = False, progress: Progress | None = None
) -> Path:
    """Merge adapter ``name`` into its base model and write a standalone transformers folder."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.backends.hf.warnings import renamed_property_warnings_off

    progress = progress or NullProgress()
    manifest = read_manifest(name, settings)
    base = manifest.get("base_model", {}).get("ref")
    if not base:
        raise ConfigError(
            f"adapter {name!r} has no base model in its manifest", hint="re-train it with Ladder"
        )
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty", hint="choose another --out or pass --overwrite")
    _ref, base_dir = resolve_base(str(base), settings)
    progress.start(f"merging {name} into {base}")
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    with renamed_property_warnings_off():
        merged = PeftModel.from_pretrained(model, str(adapter_dir(name, settings))).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    provenance = {
        "exported_from_adapter": name,
        "base_model": manifest.get("base_model"),
        "data_hash": manifest.get("data", {}).get("data_hash"),
    }
    (tmp / "ladder_export.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    progress.note(f"wrote {out}")
    return out
