"""Deployment scenarios for tests: a stored decision on a local model, and fake serving formats.

A fake format's builder writes a fake-backend script into its output folder: two replies for
the measuring child's warm-up and decode, then one answer per test item (``right`` of them
correct, the rest a wrong label), so a test says "this format gets 17 of 20 right" and the real
runner, metrics and the decision's rule do the rest. ``use_formats`` swaps the format registry
for the test's formats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import PackError
from assistant.progress import Progress
from assistant.settings import Settings
from evaluation.decide.result import EVALUATED, MET, Decision, RungResult
from evaluation.decide.store import DecisionStore
from finetune.deploy import formats
from finetune.deploy.formats import Built, FormatSpec
from tests.helpers.decide import LABELS, rung, write_config

N_TEST = 20
HERE = "tests.helpers.deploy"
# How many of the N_TEST test items each fake format answers right.
RIGHT = {"fake-q2": 17, "fake-q4": 20, "fake-f16": 20, "fake-bad": 5}


def _answers(right: int) -> list[str]:
    return [LABELS[i % 4] if i < right else LABELS[(i + 1) % 4] for i in range(N_TEST)]


def _build(name: str, out: Path) -> Built:
    out.mkdir(parents=True, exist_ok=True)
    script = out / "script.json"
    replies = ["warm", "decode " * 10, *_answers(RIGHT[name])]
    script.write_text(json.dumps({"replies": replies, "default": "none"}), encoding="utf-8")
    weights = out / "weights.bin"
    weights.write_bytes(name.encode() * 100)
    return Built(model_ref=f"fake:{script}", files=(script, weights), notes=(f"{name} built",))


def build_q2(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    return _build("fake-q2", out)


def build_q4(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    return _build("fake-q4", out)


def build_f16(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    return _build("fake-f16", out)


def build_bad(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    return _build("fake-bad", out)


def build_halfway(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """A conversion that writes part of its output, then fails."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "partial.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    raise PackError("converter stopped at tensor 12 of 291")


def build_crash(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    out.mkdir(parents=True, exist_ok=True)
    (out / "partial.gguf").write_bytes(b"GGUF")
    raise RuntimeError("quantize: out of memory\nmore lines")


def no_engine() -> str | None:
    return "pip install fake-engine==1.0"


def spec(name: str, rank: int, builder: str | None = None, missing: bool = False) -> FormatSpec:
    short = name.removeprefix("fake-")
    return FormatSpec(
        name,
        "fake-engine",
        rank,
        f"{HERE}:{builder or 'build_' + short}",
        f"{HERE}:no_engine" if missing else None,
    )


def use_formats(monkeypatch: pytest.MonkeyPatch, *specs: FormatSpec) -> None:
    """The format registry holds exactly ``specs`` for this test."""
    monkeypatch.setattr(formats.FORMATS, "_targets", {s.name: s for s in specs})
    monkeypatch.setattr(formats.FORMATS, "_loaded", {s.name: s for s in specs})


def store_decision(
    folder: Path,
    settings: Settings,
    model: str,
    *,
    recommended: str | None = "prompt",
    name: str = "cases",
) -> Decision:
    """A met decision whose recommended prompt rung runs on ``model``, over a fresh test split."""
    config = write_config(folder, n_dev=4, n_test=N_TEST, name=name)
    rung_config = {k: v for k, v in rung("prompt").items() if k != "name"}  # as a decision stores it
    decision = Decision(
        decision_id=f"d20261206-120000-{abs(hash((name, model))) % 10**6:06d}",
        name=name,
        created="2026-12-06T12:00:00+00:00",
        status=MET if recommended else "not_met",
        recommended=recommended,
        config_path=str(config),
        model=model,
        dev_suite="dev",
        test_suite="test",
        targets=["exact_match >= 0.8"],
        limits={"max_cost_per_1k": None, "max_p95_latency_s": None},
        rungs=[
            RungResult(
                "prompt", "prompt", model=model, state=EVALUATED, meets=bool(recommended), config=rung_config
            )
        ],
    )
    with DecisionStore(settings.db_path) as store:
        store.save(decision)
    return decision


def manifest(settings: Settings, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (settings.home / "deployments" / name / "manifest.json").read_text(encoding="utf-8")
    )
    return data
