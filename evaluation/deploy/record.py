"""Deployments on disk: ``LADDER_HOME/deployments/<name>/``, one folder per format's artifact
and ``manifest.json`` (``Deployment.to_dict()`` plus how to serve the choice).

Nothing half-written ever sits under a deployment's name: a run builds into a staging folder
``deployments/.staging-<name>-<pid>/`` (removed on any failure), writes the manifest last, and
moves the whole folder into place with ``os.replace``; an older deployment of that name is moved
aside first and removed after. Listing skips dot-folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.storage import replace_folder, sha256_file, write_atomic
from evaluation.deploy.result import ArtifactFile, Deployment
from evaluation.store import RunNotFound

MANIFEST = "manifest.json"


def deployments_dir(settings: Settings) -> Path:
    return settings.home / "deployments"


def check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or name != name.strip():
        raise ConfigError(
            f"bad deployment name {name!r}",
            hint="use letters, digits, '-', '_' or '.', not starting with '.' (no '/' or spaces)",
        )
    return name


def staging_dir(name: str, settings: Settings) -> Path:
    return deployments_dir(settings) / f".staging-{check_name(name)}-{os.getpid()}"


def artifact_files(files: tuple[Path, ...] | list[Path], root: Path) -> list[ArtifactFile]:
    """Each file of an artifact, relative to the deployment folder, with its size and SHA-256."""
    return [
        ArtifactFile(str(Path(f).relative_to(root)), Path(f).stat().st_size, sha256_file(Path(f)))
        for f in sorted(files)
    ]


def machine() -> dict[str, Any]:
    """The machine the formats were measured on (speed and RSS are this machine's)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and "cpu" not in info:
            info["cpu"] = value.strip()
        if key.strip() == "flags" and "simd" not in info:
            flags = set(value.split())
            wanted = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
            info["simd"] = [f for f in wanted if f in flags]
    with contextlib.suppress(OSError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def publish(staging: Path, deployment: Deployment, settings: Settings) -> Path:
    """Write the manifest into ``staging`` and move it into place as the deployment's folder."""
    write_atomic(staging / MANIFEST, render_manifest(deployment))
    return replace_folder(staging, deployments_dir(settings) / check_name(deployment.name))


def render_manifest(deployment: Deployment) -> str:
    from evaluation.deploy.report import serve_commands

    data = deployment.to_dict()
    data["serve"] = serve_commands(deployment)
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def list_deployments(settings: Settings) -> list[Deployment]:
    """Every deployment with a manifest, newest first."""
    root = deployments_dir(settings)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
            continue
        found.append(Deployment.from_dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))))
    return sorted(found, key=lambda d: d.created, reverse=True)


def load_deployment(name: str, settings: Settings) -> Deployment:
    path = deployments_dir(settings) / check_name(name) / MANIFEST
    if not path.is_file():
        known = ", ".join(d.name for d in list_deployments(settings)) or "none"
        raise RunNotFound(f"no deployment named {name!r}", hint=f"deployments: {known}")
    try:
        return Deployment.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise ConfigError(
            f"the manifest of deployment {name!r} is damaged ({type(exc).__name__})",
            hint=f"deploy again: ladder deploy DECISION --name {name}",
        ) from None
