"""Start ``ladder serve``'s app in-process (uvicorn in a thread, a free loopback port) and talk
to it with the official ``openai`` client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from assistant.settings import Settings, load_settings
from tests.openai_server import serve
from tests.server.helpers import KEY

Started = tuple[str, Any]  # (base url, the Server state)


@pytest.fixture
def settings(isolated_home: object) -> Settings:
    return load_settings({"threads": 1})


@pytest.fixture
def start(settings: Settings) -> Callable[..., AbstractContextManager[Started]]:
    """``with start(queue_size=1, backend=fake) as (url, server):`` - key ``KEY``, model ``fake``."""

    @contextmanager
    def _start(backend: Any = None, **overrides: Any) -> Iterator[Started]:
        from ui.server.app import create_app
        from ui.server.config import server_config

        values: dict[str, Any] = {"model": "fake", "api_keys": [KEY]}
        values.update(overrides)
        config = server_config(settings, **values)
        app = create_app(settings, config, backend=backend)
        with serve(app) as url:
            yield url, app.state.server

    return _start
