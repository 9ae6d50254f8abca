"""Running ``ladder`` in-process for tests: exit code, stdout and stderr, no tracebacks."""

from __future__ import annotations

import pytest

from assistant.cli import main


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Import this fixture into a test module: rich wraps long paths at 80 columns otherwise."""
    monkeypatch.setenv("COLUMNS", "300")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
