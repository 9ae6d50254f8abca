"""Suites written by tests, in the formats ``evaluation.suites.spec`` reads."""

from __future__ import annotations

import json
from pathlib import Path


def write_mcq_suite(folder: Path, labels: str, thresholds: dict[str, float] | None = None) -> Path:
    """A generic MCQ suite whose i-th item has the answer ``labels[i]``."""
    rows = [{"id": f"q{i}", "question": f"Question {i}?", "options": ["w", "x", "y", "z"], "label": label,
             "subject": "algebra" if i % 2 else "history"} for i, label in enumerate(labels)]  # fmt: skip
    (folder / "mcq.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = {"name": "mini_mcq", "kind": "mcq", "data": "mcq.jsonl", "metrics": ["accuracy", "unparseable"]}
    if thresholds:
        spec["thresholds"] = thresholds
    path = folder / "mini_mcq.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return path
