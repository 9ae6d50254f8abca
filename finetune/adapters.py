"""The adapter registry: ``LADDER_HOME/adapters/<name>/``, each a PEFT folder with a manifest.

An adapter folder is what ``PeftModel.from_pretrained`` reads (``adapter_config.json``,
``adapter_model.safetensors``), so any strategy uses it by name: ``--model base+name``.
``manifest.json`` beside it records how it was made: the base model reference and the hash of
its files, the data (hash and report), the hyperparameters, the final losses, the wall time
and device, and ``evaluations``, a list the evaluation engine appends to.

A full fine-tune (``--peft full``) is registered the same way, but its folder is a whole
transformers model (``config.json``, weights, tokenizer) that loads in place of the base.
``method_of`` says which method made an adapter.

``export_adapter`` writes one of two formats (``EXPORT_FORMATS``):

- ``merged`` (the default): the adapter merged into its base, a standalone transformers folder
  (safetensors, config, tokenizer, chat template) that transformers, vLLM (``vllm serve
  <folder>``) or ``--model <folder>`` load with no PEFT at all. A full fine-tune is already a
  whole model: it is copied. Its ``config.json`` is written both ways: transformers 5 keeps the
  rotary settings in ``rope_parameters``, which transformers 4 (what vLLM pins: ``>= 4.56, < 5``)
  does not read, so it would run the model with its default ``rope_theta`` of 10000;
  ``rope_theta`` and ``rope_scaling`` go beside it.
- ``peft``: a portable PEFT folder (``adapter_config.json``, ``adapter_model.safetensors``) whose
  ``base_model_name_or_path`` is the base's model id on the Hugging Face hub (a pack's upstream
  model, from the catalog), not a path on this machine, so vLLM serves it beside that base
  (``vllm_command``). No tokenizer files: the adapter leaves the vocabulary alone and vLLM uses
  the base's tokenizer. A full fine-tune has no adapter to export (merged only); a prompt-tuning
  adapter exports for PEFT, but cannot be merged, and vLLM serves LoRA adapters only.

Exports are readable by all (files 0644, folders 0755): the serving process is often another
user than the one who trained.
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
from assistant.storage import replace_folder

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


def is_registered_folder(folder: Path) -> bool:
    """A PEFT folder, or a full fine-tune's model folder (config.json beside Ladder's manifest)."""
    return (folder / "adapter_config.json").is_file() or (
        (folder / "config.json").is_file() and (folder / MANIFEST).is_file()
    )


def exists(name: str, settings: Settings) -> bool:
    return is_registered_folder(adapter_dir(name, settings))


def method_of(manifest: dict[str, Any]) -> str:
    """The training method (``--peft``) that made an adapter; ``lora`` for one made before
    there was a choice."""
    peft = manifest.get("peft")
    if isinstance(peft, dict) and peft.get("method"):
        return str(peft["method"])
    return str(manifest.get("hyperparameters", {}).get("peft") or "lora")


def read_manifest(name: str, settings: Settings) -> dict[str, Any]:
    folder = adapter_dir(name, settings)
    if not is_registered_folder(folder):
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
        if folder.name.startswith(".") or not is_registered_folder(folder):
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
    return replace_folder(tmp, adapter_dir(name, settings))


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


# ---- export ----------------------------------------------------------------------------------
EXPORT_FORMATS = ("merged", "peft")
FILE_MODE, DIR_MODE = 0o644, 0o755
VLLM_DEFAULT_MAX_LORA_RANK = 16  # vLLM refuses an adapter of a higher rank without --max-lora-rank
VLLM_LORA_RANKS = (32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts above 16
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def export_adapter(
    name: str,
    out: Path,
    settings: Settings,
    *,
    export_format: str = "merged",
    base_id: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Write adapter ``name`` to ``out`` in ``export_format``; the folder written."""
    if export_format not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {export_format!r}", hint=f"use {' or '.join(EXPORT_FORMATS)}"
        )
    progress = progress or NullProgress()
    manifest = read_manifest(name, settings)
    method = method_of(manifest)
    base = manifest.get("base_model", {}).get("ref")
    if not base:
        raise ConfigError(
            f"adapter {name!r} has no base model in its manifest", hint="re-train it with Ladder"
        )
    if export_format == "peft" and method == "full":
        raise ConfigError(
            f"{name!r} is a full fine-tune: a whole model, with no adapter to export",
            hint="export it with --format merged (vllm serve <folder>)",
        )
    if export_format == "merged" and method == "prompt-tuning":
        raise ConfigError(
            f"{name!r} is a prompt-tuning adapter: its virtual tokens cannot be merged into the weights",
            hint="export it with --format peft",
        )
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty", hint="choose another --out or pass --overwrite")
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    provenance: dict[str, Any] = {
        "exported_from_adapter": name,
        "format": export_format,
        "method": method,
        "base_model": manifest.get("base_model"),
        "data_hash": manifest.get("data", {}).get("data_hash"),
    }
    if export_format == "peft":
        model_id = base_id or upstream_id(str(base), settings)
        provenance["base_model_id"] = model_id
        _write_peft(adapter_dir(name, settings), tmp, model_id)
    else:
        progress.start(f"merging {name} into {base}")
        _write_merged(name, str(base), method, tmp, settings)
        write_config_both_ways(tmp / "config.json")
    (tmp / "ladder_export.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    make_readable(tmp)
    replace_folder(tmp, out)
    progress.note(f"wrote {out}")
    return out


def upstream_id(base: str, settings: Settings) -> str:
    """The hub model id of a base reference: a pack's upstream model from the catalog."""
    from assistant.models.catalog import load_catalog

    catalog = load_catalog(settings.catalog_file)
    spec = catalog.get(base)
    if spec is None or not spec.upstream or spec.upstream == "unknown":
        raise ConfigError(
            f"the base model {base!r} has no known model id to name in adapter_config.json",
            hint="pass --base-id ORG/NAME (the id the serving engine loads the base by)",
        )
    return str(spec.upstream)


def _write_peft(source: Path, tmp: Path, model_id: str) -> None:
    config = json.loads((source / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = model_id
    if config.get("tokenizer_name_or_path"):
        config["tokenizer_name_or_path"] = model_id
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    shutil.copyfile(source / "adapter_model.safetensors", tmp / "adapter_model.safetensors")


def _write_merged(name: str, base: str, method: str, tmp: Path, settings: Settings) -> None:
    source = adapter_dir(name, settings)
    if method == "full":  # already a whole model: its weights, config and tokenizer
        for file in source.iterdir():
            if file.is_file() and file.name != MANIFEST:
                shutil.copyfile(file, tmp / file.name)
        return
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.backends.hf.warnings import renamed_property_warnings_off

    _ref, base_dir = resolve_base(base, settings)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    with renamed_property_warnings_off():
        merged = PeftModel.from_pretrained(model, str(source)).merge_and_unload()
    merged.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp)


def write_config_both_ways(path: Path) -> None:
    """Add transformers 4's ``rope_theta``/``rope_scaling`` beside transformers 5's
    ``rope_parameters`` (both read the same rotary embedding from it)."""
    config = json.loads(path.read_text(encoding="utf-8"))
    rope = config.get("rope_parameters")
    if not isinstance(rope, dict) or "rope_theta" not in rope:
        return
    config.setdefault("rope_theta", rope["rope_theta"])
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    if scaling.get("rope_type", "default") == "default":
        config.setdefault("rope_scaling", None)
    else:
        config.setdefault("rope_scaling", scaling)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def make_readable(folder: Path) -> None:
    """Files 0644 and folders 0755 under ``folder`` (save_pretrained writes 0600 under a strict umask)."""
    os.chmod(folder, DIR_MODE)
    for path in folder.rglob("*"):
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)


def vllm_command(name: str, folder: Path, export_format: str) -> str | None:
    """The command that serves an export on vLLM; None where vLLM cannot (prompt tuning)."""
    info = json.loads((folder / "ladder_export.json").read_text(encoding="utf-8"))
    if export_format == "merged":
        return f"vllm serve {folder} --served-model-name {name}"
    if info.get("method") == "prompt-tuning":
        return None
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    rank = int(config.get("r") or 0)
    extra = ""
    if rank > VLLM_DEFAULT_MAX_LORA_RANK:
        extra = f" --max-lora-rank {next((r for r in VLLM_LORA_RANKS if r >= rank), rank)}"
    return f"vllm serve {info['base_model_id']} --enable-lora --lora-modules {name}={folder}{extra}"
