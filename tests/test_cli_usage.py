"""Usage errors (a missing argument, a value of the wrong type, no sub-command) through the
real ``main(argv)``: one ``error:`` line, one ``hint:`` line, exit 2, never a traceback.

typer 0.2x raises the exception classes of its own vendored click (``typer._click``), not
``click``'s, so a handler that catches only ``click.ClickException`` lets them through."""

from __future__ import annotations

import pytest

from tests.cli_helpers import run


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["ask"], "question"),
        (["decide"], "config_file"),
        (["kb", "add"], "name"),
        (["eval"], "suite"),
        (["ask", "Hi", "--max-tokens", "abc"], "--max-tokens"),
        (["serve", "--port", "notaport"], "--port"),
        (["ask", "Hi", "--no-such-flag"], "--no-such-flag"),
        (["kb", "no-such-subcommand"], "no-such-subcommand"),
    ],
)
def test_usage_error_is_one_line_and_a_hint_with_exit_2(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal must not split the line either
    code, out, err = run(argv, capsys)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ") and names.lower() in lines[0].lower(), err
    command = "ladder " + " ".join(a for a in argv[:2] if not a.startswith("-") and a != "Hi")
    if argv[-1] == "no-such-subcommand":
        command = "ladder kb"
    assert lines[1].startswith("hint: ") and f"{command} --help" in lines[1], err
    assert out == ""


@pytest.mark.parametrize("argv", [[], ["kb"], ["finetune"]])
def test_a_group_without_a_sub_command_shows_its_help(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert "Traceback" not in out + err
    # click >= 8.2 (and typer's vendored click) calls a missing sub-command a usage error (2);
    # click 8.1, which typer >= 0.18 still accepts, shows the help and exits 0.
    assert code in (0, 2)
    assert "Usage:" in out + err and "Commands" in out + err
