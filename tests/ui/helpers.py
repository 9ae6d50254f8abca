"""Shared by the UI tests: app paths, a tiny suite, waiting for background jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "ui" / "web" / "app.py"
CHAT_APP = REPO / "ui" / "web" / "chat_app.py"

QA_ITEMS = [
    {"id": "q1", "user_input": "What colour is the sky?", "reference": "[fake] What colour is the sky?"},
    {"id": "q2", "user_input": "How many days of leave?", "reference": "fifteen days"},
    {"id": "q3", "user_input": "Who approves expenses?", "reference": "the team lead"},
]


def write_suite(folder: Path, name: str = "tiny_qa", items: list[dict[str, Any]] | None = None) -> Path:
    """A three-item QA suite; the fake backend echoes, so q1 is right and the others are wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    data.write_text("\n".join(json.dumps(i) for i in items or QA_ITEMS) + "\n", encoding="utf-8")
    spec = folder / f"{name}.yaml"
    spec.write_text(
        f"name: {name}\nkind: qa\ndata: {data.name}\nmetrics: [exact_match, token_f1]\n"
        "thresholds:\n  token_f1: 0.9\n",
        encoding="utf-8",
    )
    return spec


def wait_jobs(kind: str | None = None, timeout_s: float = 120.0) -> list[Any]:
    """Wait until every job (of ``kind``) in this LADDER_HOME has finished; return them."""
    import time

    from assistant.settings import load_settings
    from ui.web import jobs

    settings = load_settings()
    deadline = time.time() + timeout_s
    while True:
        listed = jobs.list_jobs(settings, kind)
        if all(job.finished for job in listed) or time.time() > deadline:
            return listed
        time.sleep(0.2)


def texts(at: Any) -> str:
    """Every markdown, text, caption, info, success, warning and error value on the page, joined."""
    parts: list[str] = []
    for kind in ("markdown", "text", "caption", "info", "success", "warning", "error", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for exp in at.expander:
        parts.append(str(exp.label))
    return "\n".join(parts)
