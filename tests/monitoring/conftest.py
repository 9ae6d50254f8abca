"""The server fixture of tests/server (``start``), for the API's answer log."""

from tests.server.conftest import start

__all__ = ["start"]
