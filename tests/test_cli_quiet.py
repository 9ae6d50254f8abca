"""A normal run prints Ladder's own output only: library chatter (transformers' and peft's
FutureWarnings, tqdm bars, "loading weights" progress) goes through the logging setup and
shows with ``--verbose``.

These run ``ladder`` in a subprocess: pytest records warnings itself, so an in-process run
would hide exactly what a user sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.settings import load_settings
from tests.finetune.test_ft_dpo import write_pairs

ROOT = Path(__file__).resolve().parents[1]
# What library noise looks like: a warning category, a tqdm bar, a deprecation notice.
NOISE = re.compile(r"Warning\b|\d+it/s|it/s\]|\|[█▏▎▍▌▋▊▉ #]+\||deprecated|Loading weights", re.IGNORECASE)


def ladder(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ui.cli.app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.fixture
def dpo_adapter(tiny_model_dir: Path, isolated_home: Path) -> list[str]:
    pairs = write_pairs(load_settings())
    return ["finetune", "train", "--base", str(tiny_model_dir), "--name", "p1", "--method", "dpo",
            "--data", str(pairs), "--max-steps", "2", "--batch-size", "3", "--rank", "4",
            "--min-examples", "3", "--threads", "1"]  # fmt: skip


def test_dpo_training_and_export_print_no_library_noise(dpo_adapter: list[str], tmp_path: Path) -> None:
    trained = ladder(*dpo_adapter)
    assert trained.returncode == 0, trained.stderr
    assert not NOISE.search(trained.stdout + trained.stderr), trained.stdout + trained.stderr
    exported = ladder("finetune", "export", "p1", "--out", str(tmp_path / "merged"))
    assert exported.returncode == 0, exported.stderr
    assert "exported p1" in exported.stdout
    assert not NOISE.search(exported.stdout + exported.stderr), exported.stdout + exported.stderr


def test_verbose_shows_what_a_normal_run_hides(dpo_adapter: list[str], tmp_path: Path) -> None:
    trained = ladder("--verbose", *dpo_adapter)
    assert trained.returncode == 0, trained.stderr
    exported = ladder("--verbose", "finetune", "export", "p1", "--out", str(tmp_path / "merged"))
    assert exported.returncode == 0, exported.stderr
    # Library output is no longer held back: Python warnings come through logging.
    shown = trained.stderr + exported.stderr
    assert NOISE.search(shown), shown


def test_log_lines_go_to_the_stderr_of_the_moment_and_only_at_the_runs_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler follows ``sys.stderr``: after the stream it was made under is closed (an
    earlier run's captured stderr), a line goes to the current one instead of printing
    "--- Logging error ---" with a traceback; a library's debug line stays out of a quiet run
    even when the library lowered its own logger's level."""
    import io
    import logging

    from assistant import logs

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    chatty = logging.getLogger("bm25s")
    monkeypatch.setattr(chatty, "level", logging.DEBUG)
    chatty.debug("Building index from tokens")
    logging.getLogger("assistant.test").warning("the store stopped answering")
    assert second.getvalue() == "WARNING: the store stopped answering\n"
