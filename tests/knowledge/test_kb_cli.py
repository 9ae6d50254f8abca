"""``ladder kb`` through ``ui.cli.app.main``: exit codes, tables, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_kb_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import ui.cli.kb\n"
        "heavy = ('chromadb', 'torch', 'sentence_transformers', 'jieba', 'bm25s')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_kb_commands_end_to_end(
    capsys: pytest.CaptureFixture[str], pdf_bytes: Callable[[list[str]], bytes]
) -> None:
    code, out, _ = run(["kb", "list"], capsys)
    assert code == 0 and "no knowledge bases" in out

    code, out, _ = run(["kb", "create", "handbook"], capsys)
    assert code == 0 and "created knowledge base handbook" in out
    code, _, err = run(["kb", "create", "handbook"], capsys)
    assert code == 2 and "already exists" in err

    Path("docs").mkdir()
    Path("docs/leave.txt").write_text("员工每年享有十五天带薪年假。", encoding="utf-8")
    Path("docs/manual.pdf").write_bytes(pdf_bytes(["Intro page.", "The printer needs a badge."]))
    code, out, err = run(["kb", "add", "handbook", "docs"], capsys)
    assert code == 0, err
    assert "leave.txt" in out and "manual.pdf" in out and "2 added" in out
    assert "embedding chunks" in err  # the progress bar, on stderr

    code, out, _ = run(["kb", "add", "handbook", "docs/leave.txt"], capsys)
    assert code == 0 and "unchanged" in out

    code, out, _ = run(["kb", "search", "handbook", "年假有几天", "-k", "1"], capsys)
    assert code == 0 and "十五天带薪年假" in out and "leave.txt" in out
    # Hits are shown in the order of the score column (the fused score in hybrid mode, the
    # cosine in dense, BM25 in bm25), with the relevance min_score compares beside it.
    for mode, column in (("hybrid", "fused"), ("dense", "cosine"), ("bm25", "BM25")):
        code, out, _ = run(["kb", "search", "handbook", "printer badge", "-k", "3", "--mode", mode], capsys)
        assert code == 0 and column in out and "relevance" in out
        shown = [float(line.split("│")[2]) for line in out.splitlines() if line.startswith("│")]
        assert len(shown) >= (1 if mode == "bm25" else 2) and shown == sorted(shown, reverse=True), mode
    code, out, _ = run(["kb", "search", "handbook", "printer badge", "--mode", "bm25", "--json"], capsys)
    hits = json.loads(out)
    assert code == 0 and hits[0]["page"] == 2 and hits[0]["source"].endswith("manual.pdf")
    code, _, err = run(["kb", "search", "handbook", "x", "--mode", "fuzzy"], capsys)
    assert code == 2 and "mode must be one of" in err

    code, out, _ = run(["kb", "list"], capsys)
    assert code == 0 and "handbook" in out and "packaged:all-MiniLM-L6-v2" in out
    code, out, _ = run(["kb", "info", "handbook"], capsys)
    assert code == 0 and "chunks" in out and "manual.pdf" in out and "leave.txt" in out

    code, out, _ = run(["kb", "remove", "handbook", "docs/leave.txt"], capsys)
    assert code == 0 and "removed 1 chunks" in out
    code, _, err = run(["kb", "remove", "handbook", "docs/leave.txt"], capsys)
    assert code == 3 and "no source matching" in err

    code, out, _ = run(["kb", "delete", "handbook", "--yes"], capsys)
    assert code == 0 and "deleted" in out
    code, _, err = run(["kb", "info", "handbook"], capsys)
    assert code == 3 and "no knowledge base named 'handbook'" in err and "ladder kb create handbook" in err


def test_kb_add_reports_failures_and_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    run(["kb", "create", "mixed"], capsys)
    Path("good.md").write_text("Good content about owls.")
    Path("empty.txt").write_bytes(b"")
    Path("fake.pdf").write_bytes(b"not a pdf")
    code, out, err = run(["kb", "add", "mixed", "good.md", "empty.txt", "fake.pdf"], capsys)
    assert code == 1
    assert "good.md" in out and "added" in out and "failed" in out and "the file is empty" in out
    assert "2 of 3 files failed" in err and "empty.txt" in err and "fake.pdf" in err
    code, out, _ = run(["kb", "search", "mixed", "owls", "-k", "1"], capsys)
    assert code == 0 and "Good content about owls." in out


def test_kb_add_that_ingests_nothing_exits_1_with_a_row_per_skipped_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(["kb", "create", "notes"], capsys)
    Path("assets").mkdir()
    Path("assets/.env.txt").write_text("SECRET=1")
    Path("assets/logo.png").write_bytes(b"\x89PNG")
    Path("assets/self").symlink_to(Path("assets").resolve())
    code, out, err = run(["kb", "add", "notes", "assets"], capsys)
    assert code == 1, out + err
    assert "no files" not in out
    for name, reason in ((".env.txt", "hidden file"), ("logo.png", "unsupported file type .png"),
                         ("self", "symlink loop")):  # fmt: skip
        row = next((line for line in out.splitlines() if name in line), "")
        assert "skipped" in row and reason in row, out
    assert "3 skipped" in out
    assert "nothing was ingested: 3 path(s) skipped, 0 failed" in err and "hint:" in err

    Path("empty").mkdir()
    code, out, err = run(["kb", "add", "notes", "empty"], capsys)
    assert code == 1 and "nothing to ingest: no files under empty" in err

    Path("good.md").write_text("Owls hunt at night.")
    code, out, err = run(["kb", "add", "notes", "good.md", "assets"], capsys)
    assert code == 0, err  # skipped paths next to an ingested file are reported, not an error
    assert "1 added, 3 skipped" in out


def test_kb_commands_on_a_missing_kb(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (
        ["add", "ghost", "x.txt"],
        ["search", "ghost", "q"],
        ["remove", "ghost", "x"],
        ["delete", "ghost"],
    ):
        code, _, err = run(["kb", *args], capsys)
        assert code == 3 and "ghost" in err, args
