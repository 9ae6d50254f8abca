"""Stored judge checks: ``LADDER_HOME/judges/<judge>.json``, one file per judge reference.

A later check of the same judge replaces the metrics it measured and keeps the others. A
stored agreement counts only while the labelled set it was measured on is unchanged (same
SHA-256) and the judge prompts are the ones it was measured with (``PROMPTS_VERSION``): a
stale one is never used, so the judge is checked again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.storage import write_atomic
from evaluation.calibration.check import JudgeCheck

if TYPE_CHECKING:
    from assistant.settings import Settings


@dataclass(frozen=True)
class StoredAgreement:
    judge: str
    metric: str
    concordance: float | None
    low: float | None
    high: float | None
    n: int
    failed: int
    set_name: str
    set_sha256: str
    created: str

    def describe(self) -> str:
        """``0.82 [0.71, 0.91], n=46`` (``n/a`` when the set gave no pairs)."""
        if self.concordance is None:
            return f"n/a (n={self.n})"
        interval = (
            f" [{self.low:.2f}, {self.high:.2f}]" if self.low is not None and self.high is not None else ""
        )
        failed = f", {self.failed} n/a" if self.failed else ""
        return f"{self.concordance:.2f}{interval}, n={self.n}{failed}"


def prompts_version() -> str:
    """The version of the judge prompts (evaluation.metrics.judge_prompts): a check made with
    other prompts is stale, as the judge's verdicts change with them."""
    from evaluation.metrics.judge_prompts import PROMPTS_VERSION

    return str(PROMPTS_VERSION)


def judges_dir(settings: Settings) -> Path:
    return settings.home / "judges"


def judge_file(settings: Settings, judge_ref: str) -> Path:
    """A file name for any reference (a pack name, a folder, ``openai:m@url``), never a path
    the reference could steer: a readable slug plus a hash of the whole reference."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge_ref).strip("-.")[:48] or "judge"
    digest = hashlib.sha256(judge_ref.encode("utf-8")).hexdigest()[:10]
    return judges_dir(settings) / f"{slug}-{digest}.json"


def load_record(settings: Settings, judge_ref: str) -> dict[str, Any] | None:
    path = judge_file(settings, judge_ref)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("judge") == judge_ref else None


def save(settings: Settings, check: JudgeCheck) -> Path:
    """Store ``check``, merged over what was stored for the same judge on the same set."""
    previous = load_record(settings, check.judge) or {}
    metrics: dict[str, Any] = {}
    if (
        previous.get("set_sha256") == check.set_sha256
        and previous.get("prompts_version") == prompts_version()
    ):
        metrics.update(previous.get("metrics") or {})
    for name, measured in check.metrics.items():
        metrics[name] = {
            **measured.agreement.to_dict(),
            "created": check.created,
            "wall_s": round(measured.wall_s, 1),
            "by_lang": {lang: a.to_dict() for lang, a in measured.by_lang.items()},
            "items": [dataclasses.asdict(v) for v in measured.items],
        }
    record = {
        "judge": check.judge,
        "prompts_version": prompts_version(),
        "model_id": check.model_id,
        "set_name": check.set_name,
        "set_sha256": check.set_sha256,
        "created": check.created,
        "metrics": metrics,
    }
    path = judge_file(settings, check.judge)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    return path


def stored_agreement(
    settings: Settings, judge_ref: str, metric: str, set_sha256: str | None = None
) -> StoredAgreement | None:
    """The stored agreement of ``judge_ref`` on ``metric``; None when never measured, or when
    ``set_sha256`` is given and the check was made on another version of the set."""
    record = load_record(settings, judge_ref)
    if record is None:
        return None
    if set_sha256 is not None and record.get("set_sha256") != set_sha256:
        return None
    if record.get("prompts_version") != prompts_version():
        return None  # measured with other judge prompts: it says nothing about these
    measured = (record.get("metrics") or {}).get(metric)
    if not isinstance(measured, dict):
        return None
    return StoredAgreement(
        judge_ref,
        metric,
        measured.get("concordance"),
        measured.get("low"),
        measured.get("high"),
        int(measured.get("n") or 0),
        int(measured.get("failed") or 0),
        str(record.get("set_name") or ""),
        str(record.get("set_sha256") or ""),
        str(measured.get("created") or record.get("created") or ""),
    )


def list_records(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for path in sorted(judges_dir(settings).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("judge"), str):
            out.append(data)
    return out


def judge_agreement(
    settings: Settings, judge_ref: str | None, metrics: list[str]
) -> dict[str, dict[str, Any] | None]:
    """What a run records about its judge: each judged metric's stored agreement on the current
    labelled set (None: never checked there). No judge, no judged metric: ``{}``."""
    if not judge_ref or not metrics:
        return {}
    from evaluation.calibration.data import load_set

    sha = load_set().sha256
    out: dict[str, dict[str, Any] | None] = {}
    for metric in metrics:
        stored = stored_agreement(settings, judge_ref, metric, sha)
        out[metric] = (
            None
            if stored is None
            else {
                "concordance": stored.concordance,
                "low": stored.low,
                "high": stored.high,
                "n": stored.n,
                "failed": stored.failed,
                "created": stored.created,
            }
        )
    return out
