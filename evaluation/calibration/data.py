"""The labelled set a judge is checked on: ``datasets/judge/calibration.jsonl`` or a team's own.

One JSON object per line: ``id``, ``user_input``, ``retrieved_contexts`` (list), ``response``,
``reference``, ``lang`` and ``labels`` (metric name -> a person's verdict in [0, 1], or
``null`` where the metric does not apply). Everything else is kept but not read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.resources import datasets_dir

SAMPLE_FIELDS = ("user_input", "retrieved_contexts", "response", "reference")


@dataclass(frozen=True)
class LabelledItem:
    id: str
    lang: str
    sample: dict[str, Any]  # the ragas fields a metric reads
    labels: dict[str, float | None]
    kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # every other key of the line, unread here


@dataclass(frozen=True)
class LabelledSet:
    path: Path
    sha256: str
    items: list[LabelledItem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def labelled(self, metric: str) -> list[LabelledItem]:
        """The items with a verdict for ``metric``."""
        return [i for i in self.items if i.labels.get(metric) is not None]

    def metrics(self) -> list[str]:
        """Every metric some item has a verdict for, in a stable order."""
        return sorted({m for i in self.items for m, v in i.labels.items() if v is not None})


def default_set_path() -> Path:
    return datasets_dir() / "judge" / "calibration.jsonl"


def load_set(path: Path | str | None = None) -> LabelledSet:
    """Read and check a labelled set; a bad line is a ``ConfigError`` naming it."""
    where = Path(path) if path is not None else default_set_path()
    try:
        raw = where.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the labelled set {where}: {exc.strerror or exc}") from None
    items: list[LabelledItem] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        items.append(_item(line, f"{where.name}:{number}", seen))
    if not items:
        raise ConfigError(f"the labelled set {where} has no items")
    return LabelledSet(where, hashlib.sha256(raw).hexdigest(), items)


def _item(line: str, where: str, seen: set[str]) -> LabelledItem:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: each line must be a JSON object")
    item_id = str(data.get("id") or "").strip()
    if not item_id:
        raise ConfigError(f"{where}: an item needs an `id`")
    if item_id in seen:
        raise ConfigError(f"{where}: the id {item_id!r} appears twice")
    seen.add(item_id)
    labels = data.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ConfigError(f"{where}: `labels` must map metric names to verdicts in [0, 1]")
    clean: dict[str, float | None] = {}
    for metric, value in labels.items():
        if value is None:
            clean[str(metric)] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"{where}: the label {metric}={value!r} is not a number in [0, 1]")
        clean[str(metric)] = float(value)
    contexts = data.get("retrieved_contexts") or []
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        raise ConfigError(f"{where}: `retrieved_contexts` must be a list of strings")
    sample = {
        "user_input": str(data.get("user_input") or ""),
        "retrieved_contexts": list(contexts),
        "response": str(data.get("response") or ""),
        "reference": str(data.get("reference") or ""),
    }
    if not sample["user_input"]:
        raise ConfigError(f"{where}: an item needs a `user_input` (the question)")
    extra = {k: v for k, v in data.items() if k not in (*SAMPLE_FIELDS, "id", "lang", "kind", "labels")}
    return LabelledItem(
        item_id, str(data.get("lang") or ""), sample, clean, str(data.get("kind") or ""), extra
    )
