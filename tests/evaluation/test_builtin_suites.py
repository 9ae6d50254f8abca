"""The suites Ladder ships, by name: ``ladder suite list``, ``ladder eval NAME``, ``ladder suite
validate NAME``, the workbench's file pickers, and where the data is found."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.resources import builtin_suites, datasets_dir
from evaluation.suites.spec import load_suite
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "datasets" / "suites"


def test_a_checkout_finds_its_own_datasets_folder_through_the_data_package() -> None:
    assert datasets_dir() == ROOT / "datasets"
    assert builtin_suites() == {path.stem: path for path in sorted(SUITES.glob("*.yaml"))}
    assert {"demo_exam", "demo_qa", "support_tickets"} <= set(builtin_suites())


def test_missing_data_package_is_a_user_error_that_says_to_reinstall(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as info:
        datasets_dir()
    assert "ladder_datasets" in info.value.message and "not installed" in info.value.message
    assert info.value.hint is not None and "pip install -e ." in info.value.hint


def test_suite_list_shows_every_builtin_suite_with_its_kind_and_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["suite", "list"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    for name, path in builtin_suites().items():
        suite = load_suite(path)
        row = next(line for line in lines if f" {name} " in line)
        assert f" {suite.spec.kind} " in row and f" {len(suite)} " in row
    assert "demo_qa" in out and " 13 " in next(line for line in lines if " demo_qa " in line)
    assert f"files: {SUITES}" in out and "ladder eval NAME" in out


def test_eval_runs_a_builtin_suite_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert not (tmp_path / "demo_qa").exists()
    code, out, err = run(["eval", "demo_qa", "--model", "fake", "--report", "r.json"], capsys)
    # The fake model's reply overlaps the references a little: token_f1 misses the suite's 0.5.
    assert code == 1, err
    assert "threshold missed: prompt: token_f1 = 0.203 is below the threshold 0.5" in err
    assert "13 records · 13 model calls" in out
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["suite"] == "demo_qa" and report["suite_path"] == str(SUITES / "demo_qa.yaml")


def test_a_file_of_that_name_here_wins_over_the_builtin_suite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(SUITES / "demo_qa.yaml", tmp_path / "demo_qa")
    (tmp_path / "demo_qa.jsonl").write_text(
        json.dumps({"user_input": "What is 2+2?", "reference": "4"}) + "\n", encoding="utf-8"
    )
    code, out, err = run(["eval", "demo_qa", "--model", "fake", "--report", "r.json"], capsys)
    assert code == 1 and "1 records · 1 model calls" in out, err
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["suite_path"] == str(tmp_path / "demo_qa")


def test_an_unknown_name_lists_the_builtin_suites(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["eval", "demo_qx", "--model", "fake"], capsys)
    assert code == 2 and out == ""
    assert "error: demo_qx is neither a file here nor a built-in suite" in err
    assert f"hint: built-in suites: {', '.join(builtin_suites())} (`ladder suite list`)" in err
    # A path (a folder or a suffix) is never taken for a name: its error stays the file's own.
    code, _, err = run(["eval", "demo_qa.yaml", "--model", "fake"], capsys)
    assert code == 2 and "suite file not found" in err and "built-in" not in err
    code, _, err = run(["eval", "suites/demo_qa", "--model", "fake"], capsys)
    assert code == 2 and "suite file not found" in err


def test_suite_validate_takes_a_builtin_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["suite", "validate", "demo_exam"], capsys)
    assert code == 0, err
    assert "ok demo_exam: 24 items, kind mcq, format ceval" in out
    code, _, err = run(["suite", "validate", "nope"], capsys)
    assert code == 2 and "neither a file here nor a built-in suite" in err


def test_workbench_pickers_list_the_shipped_suites_and_decisions_from_any_folder(tmp_path: Path) -> None:
    from assistant.settings import load_settings
    from ui.web.files import find_decision_configs, find_suites, short

    (tmp_path / "suites").mkdir()
    mine = tmp_path / "suites" / "mine.yaml"
    mine.write_text("name: mine\n", encoding="utf-8")
    settings = load_settings()
    suites = find_suites(settings)
    assert suites[0] == mine  # the current folder's come first
    assert SUITES / "demo_qa.yaml" in suites
    assert ROOT / "datasets" / "demo" / "suites" / "private_facts_dev.yaml" in suites
    decisions = {path.name for path in find_decision_configs(settings)}
    assert decisions == {"general_knowledge.yaml", "private_facts.yaml", "ticket_routing.yaml"}
    assert short(SUITES / "demo_qa.yaml") == "datasets/suites/demo_qa.yaml"
    assert short(mine) == "suites/mine.yaml"
