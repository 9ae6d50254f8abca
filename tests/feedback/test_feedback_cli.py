"""``ladder feedback``: list, show, promote, dismiss, export, with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.feedback import record_feedback
from assistant.settings import load_settings
from tests.cli_helpers import heavy_modules_after, run, wide_terminal  # noqa: F401  (autouse fixture)


@pytest.fixture
def ids(isolated_home: Path) -> tuple[int, int]:
    settings = load_settings()
    down = record_feedback(
        settings,
        question="退货期限是多久？",
        answer="7 天",
        rating="down",
        correction="30 天",
        strategy="rag",
    )
    up = record_feedback(settings, question="Capital of France?", answer="Paris", rating="up")
    return down.id, up.id


def test_list_and_show(ids: tuple[int, int], capsys: pytest.CaptureFixture[str]) -> None:
    down, up = ids
    code, out, _ = run(["feedback", "list"], capsys)
    assert code == 0 and "退货期限是多久" in out and "Capital of France?" in out and "30 天" in out
    code, out, _ = run(["feedback", "list", "--rating", "up", "--json"], capsys)
    assert code == 0 and [json.loads(line)["id"] for line in out.splitlines()] == [up]
    code, out, _ = run(["feedback", "show", str(down)], capsys)
    assert code == 0 and "correction: 30 天" in out and "strategy rag" in out
    code, _, err = run(["feedback", "show", "99"], capsys)
    assert code == 3 and "no feedback with id 99" in err


def test_promote_refuses_the_other_side_with_exit_2(
    ids: tuple[int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down, _ = ids
    code, out, _ = run(["feedback", "promote", str(down), "--to", "train"], capsys)
    assert code == 0 and "to sft (train side)" in out and "to pairs (train side)" in out
    code, _, err = run(
        ["feedback", "promote", str(down), "--to", "suite", "--out", str(tmp_path / "s.yaml")], capsys
    )
    assert code == 2 and "already feeds the train side" in err and "hint:" in err
    assert not (tmp_path / "s.yaml").exists()
    code, _, err = run(["feedback", "promote", str(down), "--to", "nowhere"], capsys)
    assert code == 2 and "unknown target" in err


def test_dismiss_then_export(
    ids: tuple[int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, up = ids
    code, out, _ = run(["feedback", "dismiss", str(up), "--note", "not useful"], capsys)
    assert code == 0 and f"dismissed feedback {up}" in out
    code, _, err = run(["feedback", "promote", str(up), "--to", "sft"], capsys)
    assert code == 2 and "dismissed" in err
    code, out, _ = run(
        ["feedback", "export", "--out", str(tmp_path / "d.jsonl"), "--status", "dismissed"], capsys
    )
    assert code == 0 and "wrote 1 item" in out
    (row,) = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    assert row["id"] == up and row["note"] == "not useful"
    code, out, _ = run(["feedback", "export", "--out", str(tmp_path / "all.csv")], capsys)
    assert code == 0 and (tmp_path / "all.csv").read_text(encoding="utf-8").startswith("id,created,status")


def test_feedback_commands_import_nothing_heavy() -> None:
    out = heavy_modules_after(
        [["feedback", "--help"], ["feedback", "list"]], ("torch", "transformers", "fastapi")
    )
    assert "HEAVY []" in out, out
