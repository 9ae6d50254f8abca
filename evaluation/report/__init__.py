"""Render an evaluation run: Markdown, self-contained HTML, JSON and JUnit XML.

Every renderer reads the summaries the runner stored in the ``RunResult`` (nothing is
recomputed), so a report rendered later from the store says what the run said. Only the
drill-down reads the records, and it keeps the ``worst`` items per strategy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from assistant.errors import ConfigError
from evaluation.report.html_page import render_html
from evaluation.report.junit import render_junit
from evaluation.report.markdown import render_markdown
from evaluation.results import RunResult

__all__ = ["RENDERERS", "render_html", "render_json", "render_junit", "render_markdown", "write_report"]


def render_json(run: RunResult) -> str:
    """The whole run; ``RunResult.from_dict(json.loads(text))`` gives it back."""
    return json.dumps(run.to_dict(), ensure_ascii=False, indent=2) + "\n"


RENDERERS: dict[str, Callable[[RunResult], str]] = {
    ".md": render_markdown,
    ".html": render_html,
    ".htm": render_html,
    ".json": render_json,
    ".xml": render_junit,
}


def write_report(run: RunResult, path: Path) -> Path:
    """Write the report the suffix asks for (``.xml`` is JUnit); returns the path written."""
    path = Path(path)
    renderer = RENDERERS.get(path.suffix.lower())
    if renderer is None:
        raise ConfigError(
            f"cannot tell the report format of {path}: unknown suffix {path.suffix or '(none)'!r}",
            hint=f"use one of {', '.join(RENDERERS)} (.xml writes JUnit XML)",
        )
    text = renderer(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
