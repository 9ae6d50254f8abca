"""Running ``ladder`` in-process for tests: exit code, stdout and stderr, no tracebacks."""

from __future__ import annotations

import pytest

from ui.cli.app import main


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Import this fixture into a test module: rich wraps long paths at 80 columns otherwise."""
    monkeypatch.setenv("COLUMNS", "300")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def heavy_modules_after(commands: list[list[str]], heavy: tuple[str, ...] = ("torch", "transformers")) -> str:
    """Run ``ladder`` commands (e.g. ``--help``) in a fresh interpreter; its stdout ends with
    ``HEAVY [...]``: the ``heavy`` modules they imported."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\nfrom ui.cli.app import main\n"
        f"for args in {commands!r}:\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        f"print('HEAVY', [m for m in {heavy!r} if m in sys.modules])\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    return result.stdout + result.stderr
