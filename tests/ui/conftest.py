"""UI tests: AppTest runs the pages in-process with the fake backend (``LADDER_MODEL=fake``);
background jobs run as real worker processes against the test's LADDER_HOME."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ui.helpers import APP, CHAT_APP

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADDER_MODEL", "fake")


@pytest.fixture
def workbench(fake_model: None) -> Callable[[str | None], object]:
    """``workbench("knowledge")``: the app, run, switched to a page."""
    from streamlit.testing.v1 import AppTest

    def open_page(page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        if page:
            at.switch_page(f"views/{page}.py").run()
        return at

    return open_page


@pytest.fixture
def chat_app(fake_model: None) -> Callable[[], object]:
    from streamlit.testing.v1 import AppTest

    def open_chat() -> AppTest:
        return AppTest.from_file(str(CHAT_APP), default_timeout=60).run()

    return open_chat
