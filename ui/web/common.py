"""What every page shares: the settings, readable errors, and the session's language.

No logic lives in the UI: pages call the same service, runner, decision and fine-tune APIs
as the CLI. This module only turns their results and errors into page elements.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from assistant.errors import LadderError

if TYPE_CHECKING:
    from assistant.settings import Settings

log = logging.getLogger("ladder.ui")
# Page icons are emoji: Streamlit draws one into a data: URL, where a ":material/...:" page icon
# is fetched from fonts.gstatic.com. No page may make the browser leave the machine.
PAGE_ICON = "🪜"
CHAT_ICON = "💬"


def settings() -> Settings:
    """The settings as the CLI would load them (flags come in as LADDER_* variables)."""
    from assistant.settings import load_settings

    return load_settings()


def ui_dir(settings: Settings) -> Path:
    """LADDER_HOME/ui: uploads, background jobs, exported reports."""
    path = settings.home / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def error_text(exc: BaseException) -> str:
    """One readable paragraph of Markdown: the message and, for a user error, its hint.

    A message may quote a document or the model, so it goes through ``safe_markdown``."""
    from ui.web.model_text import safe_markdown

    if isinstance(exc, LadderError):
        return safe_markdown(exc.message + (f"\n\nhint: {exc.hint}" if exc.hint else ""))
    return safe_markdown(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Errors become a message in the page, never a traceback; our own bugs are logged in full."""
    import streamlit as st

    try:
        yield
    except LadderError as exc:
        st.error((f"{what}: " if what else "") + error_text(exc))
    except Exception as exc:
        log.exception("UI action failed: %s", what)
        st.error((f"{what}: " if what else "") + error_text(exc))


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_ci(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"


def config_file() -> Path:
    """The ladder.yaml the Settings page writes: $LADDER_CONFIG, else ./ladder.yaml (as the loader reads)."""
    import os

    env = os.environ.get("LADDER_CONFIG")
    return Path(env) if env else Path("ladder.yaml")


def ui_defaults(settings: Settings) -> dict[str, object]:
    """Workbench defaults that are not engine settings: the default judge and decision targets."""
    import json

    path = ui_dir(settings) / "defaults.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_ui_defaults(settings: Settings, **values: object) -> None:
    import json

    data = {**ui_defaults(settings), **values}
    path = ui_dir(settings) / "defaults.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
