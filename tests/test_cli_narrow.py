"""An 80-column terminal: list tables keep their key cells (ids, statuses) readable in full and
leave out low-priority columns instead of cutting every cell to "su…"; help text wraps at the
terminal's width, not at the docstring's line breaks."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from tests.cli_helpers import run


@pytest.fixture(autouse=True)
def narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _fits(out: str, width: int = 80) -> None:
    assert max(len(line) for line in out.splitlines()) <= width, out


def test_runs_list_at_80_columns_shows_ids_statuses_and_scores_in_full(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "support_questions.jsonl"
    data.write_text(json.dumps({"user_input": "Capital of France?", "reference": "Paris"}) + "\n", "utf-8")
    for _ in range(2):
        code, _, err = run(["eval", str(data), "--model", "fake", "--no-judge", "--fresh"], capsys)
        assert code == 0, err
    code, out, _ = run(["runs", "list"], capsys)
    assert code == 0
    _fits(out)
    run_ids = re.findall(r"\d{8}-\d{6}-[0-9a-f]{6}", out)
    assert len(set(run_ids)) == 2, out  # each id whole, on one line
    assert out.count("complete") == 2 and "co…" not in out
    assert "support_questions" in out  # the suite, unwrapped
    assert re.search(r"exact_match\s+(│\s+)*0\.000", out), out  # the main score, wrapped at a word
    assert "not shown at this width" in out  # and what was left out, so no one wonders


def test_feedback_list_at_80_columns_shows_ids_statuses_and_questions(
    capsys: pytest.CaptureFixture[str], isolated_home: Path
) -> None:
    from assistant.feedback import record_feedback
    from assistant.settings import load_settings

    settings = load_settings()
    ids = [
        record_feedback(settings, question="How many days of annual leave do new staff get?",
                        answer="Fifteen days, rising to twenty after five years.", rating="down",
                        correction="Twenty days from the first year.", strategy="rag").id,
        record_feedback(settings, question="退货期限是多久？", answer="7 天", rating="up").id,
    ]  # fmt: skip
    code, out, _ = run(["feedback", "list"], capsys)
    assert code == 0
    _fits(out)
    for item_id in ids:
        assert re.search(rf"│\s*{item_id} │", out), out
    assert out.count("new") >= 2 and "su…" not in out and "ne…" not in out
    assert "How many days" in out and "退货期限是多久" in out


def _description(help_text: str) -> list[str]:
    """The lines between the usage line and the first box of options."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    return [line.strip() for line in lines[start:end]]


@pytest.mark.parametrize(
    "argv", [["suite", "generate"], ["finetune", "prepare"], ["finetune", "train"], ["demo"]]
)
def test_help_wraps_paragraphs_at_the_terminal_width(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([*argv, "--help"], capsys)
    assert code == 0
    paragraph: list[str] = []
    for line in [*_description(out), ""]:
        if line:
            paragraph.append(line)
            continue
        # Every line but a paragraph's last is filled close to the width: a short one is a hard
        # break from the docstring ("Every item passed the" / "checks (JSON, ...").
        for filled in paragraph[:-1]:
            assert len(filled) >= 60, f"hard line break in the help of {argv}: {filled!r}\n{out}"
        paragraph = []


def test_no_command_docstring_has_line_breaks_inside_a_paragraph() -> None:
    import typer.main

    from ui.cli.app import app

    def helps(command: object, path: str) -> list[tuple[str, str]]:
        found = [(path, getattr(command, "help", None) or "")]
        for name, sub in getattr(command, "commands", {}).items():
            found += helps(sub, f"{path} {name}")
        return found

    offenders = []
    for path, text in helps(typer.main.get_command(app), "ladder"):
        for paragraph in inspect.cleandoc(text).split("\n\n"):
            if "\n" in paragraph and not paragraph.startswith("\b"):
                offenders.append(f"{path}: {paragraph[:60]!r}")
    assert offenders == []
