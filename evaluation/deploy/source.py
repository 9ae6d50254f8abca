"""The model a decision names, and that model as one transformers folder.

``find_decision`` reads a stored decision by id (or unique prefix, or ``latest``) or by name
(the newest of that name). ``source_of`` checks, before anything is built, that the decision can
be deployed at all: it recommends a rung, the rung's model is local (a pack or a folder; an
endpoint has nothing to deploy), and an adapter's base model is installed here.
``materialize`` writes the merged folder: a pack or folder with no adapter is its own folder;
an adapter is merged into its base by ``finetune.adapters.export_adapter``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.progress import Progress
from assistant.settings import Settings
from assistant.storage import feed_file
from evaluation.decide.result import Decision
from evaluation.decide.store import DecisionStore
from evaluation.store import RunNotFound


@dataclass(frozen=True)
class Source:
    """What a deployment starts from."""

    model: str  # the rung's model reference as the decision wrote it
    base: str  # the base model reference (the pack, or the adapter's base)
    base_dir: Path
    adapter: str | None = None  # the adapter's name in LADDER_HOME/adapters
    adapter_sha256: str | None = None
    strategy: dict[str, Any] = field(default_factory=dict)


def find_decision(ref: str, store: DecisionStore) -> Decision:
    """A decision by id, unique id prefix, ``latest[~N]``, or name (the newest of that name)."""
    try:
        return store.load_decision(ref)
    except RunNotFound:
        pass
    for row in store.list_decisions(limit=100_000):  # newest first
        if row["name"] == ref:
            return store.load_decision(row["decision_id"])
    raise RunNotFound(f"no decision {ref!r} (neither an id nor a name)", hint="ladder decisions list")


def folder_sha256(folder: Path) -> str:
    """One hash over a folder's files: each relative path and its contents, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode() + b"\0")
        feed_file(digest, file)
    return digest.hexdigest()


def source_of(decision: Decision, settings: Settings) -> Source:
    """The recommended rung's model, checked to be deployable here; a one-line error if not."""
    from assistant.models.refs import parse_model_ref
    from finetune import adapters

    if not decision.recommended:
        raise ConfigError(
            f"decision {decision.name} ({decision.decision_id}) recommends no rung: nothing to deploy",
            hint="deploy a decision whose status is met or tie (`ladder decisions list`)",
        )
    rung = decision.rung(decision.recommended)
    model = rung.model or decision.model
    ref = parse_model_ref(model, settings)
    if ref.kind not in ("pack", "folder"):
        raise ConfigError(
            f"the recommended rung {rung.label} runs on {model!r}, not a local model: nothing to deploy",
            hint="an endpoint is served where it runs; deploy a decision on a pack or a folder",
        )
    if ref.adapter is None:
        return Source(model, ref.text, ref.local_folder(settings), strategy=dict(rung.config))
    if ref.adapter.parent != settings.adapters_dir.resolve():
        raise ConfigError(
            f"adapter {ref.adapter} is not registered in {settings.adapters_dir}",
            hint="copy it there (the folder with manifest.json) so its base model is known",
        )
    name = ref.adapter.name
    base = adapters.read_manifest(name, settings).get("base_model", {}).get("ref")
    if not base:
        raise ConfigError(
            f"adapter {name!r} has no base model in its manifest", hint="re-train it with Ladder"
        )
    try:
        base_ref, base_dir = adapters.resolve_base(str(base), settings)
    except (ConfigError, ModelNotFoundError) as exc:
        raise ModelNotFoundError(
            f"adapter {name!r} was trained on {base!r}, which is not a local model here: {exc.message}",
            hint=exc.hint or "install its base model pack (`ladder models pull`)",
        ) from None
    return Source(
        model,
        base_ref,
        base_dir,
        adapter=name,
        adapter_sha256=folder_sha256(adapters.adapter_dir(name, settings)),
        strategy=dict(rung.config),
    )


def materialize(source: Source, scratch: Path, settings: Settings, progress: Progress) -> Path:
    """The source as one transformers folder: the base's own, or the adapter merged into ``scratch``."""
    if source.adapter is None:
        return source.base_dir
    from finetune.adapters import export_adapter

    return export_adapter(source.adapter, scratch / "merged", settings, progress=progress)
