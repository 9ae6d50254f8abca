"""``RichProgress``, the CLI's renderer of library progress: a finished step prints one final
line with its own elapsed time and stops; a log (no terminal) gets plain lines, no spinners;
an 80-column terminal shows labels in full."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from ui.cli import common as cli_common
from ui.cli.common import RichProgress

SPINNER_OR_BAR = re.compile("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏━╸╺]")


def _console(terminal: bool, width: int = 80) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=width, highlight=False), buffer


def _run_steps(progress: RichProgress) -> None:
    with progress:
        progress.start("loading data")  # no total: a spinner on a terminal
        time.sleep(0.15)
        progress.start("training", total=4, unit="steps")
        for _ in range(4):
            time.sleep(0.3)
            progress.advance()
        progress.note("a note")


def test_in_a_log_each_step_is_plain_lines_and_ends_with_its_own_elapsed_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console, buffer = _console(terminal=False)
    monkeypatch.setattr(cli_common, "err_console", lambda: console)
    _run_steps(RichProgress(eta=True))
    text = buffer.getvalue()
    assert not SPINNER_OR_BAR.search(text), text
    assert "\x1b[" not in text  # no cursor movement or colour codes in a log
    lines = text.splitlines()
    loading_done = [line for line in lines if line.startswith("✓ loading data")]
    training_done = [line for line in lines if line.startswith("✓ training")]
    assert len(loading_done) == 1 and len(training_done) == 1, text
    # A finished step's clock stops: "loading data" took 0.15 s, not the 1.35 s of the run.
    loading_s = float(re.search(r"([\d.]+) s$", loading_done[0]).group(1))  # type: ignore[union-attr]
    training_s = float(re.search(r"([\d.]+) s$", training_done[0]).group(1))  # type: ignore[union-attr]
    assert 0.1 <= loading_s < 0.9, loading_done
    assert 1.1 <= training_s < 3.0, training_done
    assert "4 / 4 steps" in training_done[0]
    assert lines.index(loading_done[0]) < lines.index(training_done[0])
    assert "a note" in lines


def test_on_a_terminal_a_finished_step_prints_once_and_leaves_the_live_display(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console, buffer = _console(terminal=True)
    monkeypatch.setattr(cli_common, "err_console", lambda: console)
    progress = RichProgress()
    with progress:
        progress.start("loading data")
        time.sleep(0.15)
        progress.start("training", total=2, unit="steps")
        live = [task.description for task in progress._progress.tasks if not task.finished]
        assert live == ["training"]  # "loading data" no longer spins
        progress.advance(2)
    assert progress._progress.tasks == [] or all(t.finished for t in progress._progress.tasks)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    assert plain.count("✓ loading data") == 1 and plain.count("✓ training") == 1, plain


def test_a_failed_step_is_not_reported_as_done(monkeypatch: pytest.MonkeyPatch) -> None:
    console, buffer = _console(terminal=False)
    monkeypatch.setattr(cli_common, "err_console", lambda: console)
    with pytest.raises(RuntimeError), RichProgress() as progress:
        progress.start("converting")
        raise RuntimeError("boom")
    text = buffer.getvalue()
    assert "✓ converting" not in text and "✗ converting" in text


def test_labels_are_not_cut_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    console, _ = _console(terminal=True, width=80)
    monkeypatch.setattr(cli_common, "err_console", lambda: console)
    progress = RichProgress(eta=True)
    label = "loading smollm2-135m+support-tickets"
    progress.start(label, total=1000, unit="bytes")
    progress.advance(300)
    rendered, out = _console(terminal=False, width=80)
    rendered.print(progress._progress.get_renderable())
    text = out.getvalue()
    assert label in text and "ETA" in text and "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80
