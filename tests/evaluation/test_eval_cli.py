"""``ladder eval`` and ``ladder runs`` end to end: exit codes, reports, and resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.helpers.suites import write_mcq_suite

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "datasets" / "suites"


def fake_script(folder: Path, delay_s: float = 0.0, default: str = "答案是B") -> str:
    path = folder / "fake.json"
    path.write_text(json.dumps({"default": default, "delay_s": delay_s}), encoding="utf-8")
    return f"fake:{path}"


def test_eval_passes_fails_and_writes_reports(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    suite = write_mcq_suite(tmp_path, "BBBA")  # a model that always says B gets 3 of 4
    model = fake_script(tmp_path)
    args = ["eval", str(suite), "--model", model, "--mode", "generate"]
    code, out, err = run([*args, "--fail-under", "accuracy=0.7", "--report", "r.md", "--report", "r.html",
                          "--junit", "ci/junit.xml", "--report", "r.json"], capsys)  # fmt: skip
    assert code == 0, err
    assert "0.750" in out and "4 model calls" in out
    assert "| prompt | 0.750" in Path("r.md").read_text(encoding="utf-8")
    assert "<svg" in Path("r.html").read_text(encoding="utf-8")
    suite_xml = ET.parse("ci/junit.xml").getroot().find("testsuite")
    assert suite_xml is not None and suite_xml.get("failures") == "0"
    data = json.loads(Path("r.json").read_text(encoding="utf-8"))
    assert data["strategies"][0]["metrics"]["accuracy"]["mean"] == 0.75 and len(data["records"]) == 4

    code, out, err = run([*args, "--fail-under", "accuracy=0.8", "--junit", "ci/junit.xml"], capsys)
    assert code == 1
    assert "threshold missed: prompt: accuracy = 0.750 is below the threshold 0.8" in err
    assert "0 model calls" in out and "4 from cache" in out
    suite_xml = ET.parse("ci/junit.xml").getroot().find("testsuite")
    assert suite_xml is not None and suite_xml.get("failures") == "1"

    code, _, err = run([*args, "--fail-under", "accuracy"], capsys)
    assert code == 2 and "bad --fail-under 'accuracy'" in err
    code, _, err = run(["eval", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "suite file not found" in err


def test_runs_list_show_compare_and_rm(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    suite = write_mcq_suite(tmp_path, "BBBA")
    run(["eval", str(suite), "--model", fake_script(tmp_path, default="B"), "--mode", "generate"], capsys)
    worse = tmp_path / "worse"
    worse.mkdir()
    run(["eval", str(suite), "--model", fake_script(worse, default="A"), "--mode", "generate"], capsys)
    code, out, _ = run(["runs", "list"], capsys)
    assert code == 0 and out.count("mini_mcq") == 2
    assert "accuracy 0.250" in out and "accuracy 0.750" in out
    code, out, _ = run(["runs", "show", "latest", "--report", "again.md"], capsys)
    assert code == 0 and "0.250" in out and Path("again.md").is_file()
    code, out, _ = run(["runs", "compare", "latest~1", "latest"], capsys)
    assert code == 0 and "on accuracy: +0.500" in out and "McNemar exact" in out
    code, _, err = run(["runs", "show", "no-such-run"], capsys)
    assert code == 2 and "no run 'no-such-run'" in err
    code, out, _ = run(["runs", "rm", "latest"], capsys)
    assert code == 0
    _, out, _ = run(["runs", "list"], capsys)
    assert out.count("mini_mcq") == 1


def _records(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_a_run_killed_with_sigkill_resumes_with_no_lost_or_duplicate_records(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, isolated_home: Path
) -> None:
    labels = "ABCD" * 10
    suite = write_mcq_suite(tmp_path, labels)
    model = fake_script(tmp_path, delay_s=0.05)
    args = ["eval", str(suite), "--model", model, "--mode", "generate", "--batch-size", "2"]
    env = {**os.environ, "LADDER_HOME": str(isolated_home), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "ui.cli.app", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    db = isolated_home / "ladder.db"
    deadline = time.monotonic() + 60
    while _records(db) < 6:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no records appeared"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = _records(db)
    assert 6 <= done_before < 40
    with sqlite3.connect(db) as conn:
        ((run_id, status),) = conn.execute("SELECT run_id, status FROM runs").fetchall()
    assert status == "running"

    code, _, err = run([*args, "--report", "resumed.json"], capsys)
    assert code == 0, err
    assert f"resuming run {run_id}" in err
    data = json.loads(Path("resumed.json").read_text(encoding="utf-8"))
    assert data["run_id"] == run_id and data["status"] == "complete"
    item_ids = [r["item_id"] for r in data["records"]]
    assert sorted(item_ids) == sorted(f"q{i}" for i in range(40)), "no record lost, none twice"
    assert data["model_calls"] == 40 - done_before, "only the lost items were answered again"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 40
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_on_a_qa_data_file_runs_it_as_a_suite_with_default_metrics(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What a newcomer types first: the questions file, not a suite YAML."""
    data = _write_jsonl(tmp_path / "data.jsonl", [
        {"user_input": "What is 2+2?", "reference": "[fake] What is 2+2?"},
        {"user_input": "Capital of France?", "reference": "Paris"},
    ])  # fmt: skip
    code, out, err = run(["eval", str(data), "--model", "fake", "--no-judge"], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "invalid YAML" not in err
    assert "exact_match" in out and "token_f1" in out and "rouge_l" in out
    assert "0.500" in out  # the fake echoes "[fake] <question>": one of two references matches exactly
    assert "2 model calls" in out
    assert "data.jsonl is a data file" in err and "qa suite" in err
    assert f"ladder suite init {data}" in err


def test_eval_on_mcq_jsonl_and_qa_csv_data_files_infers_the_kind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mcq = _write_jsonl(tmp_path / "exam.jsonl", [
        {"question": "2+2?", "options": ["3", "4"], "label": "B"},
        {"question": "3+3?", "options": ["6", "5"], "label": 0},
    ])  # fmt: skip
    code, out, err = run(["eval", str(mcq), "--model", fake_script(tmp_path, default="B"),
                          "--mode", "generate", "--fail-under", "accuracy=0.5"], capsys)  # fmt: skip
    assert code == 0, err
    assert "accuracy" in out and "0.500" in out and "mcq suite" in err
    csv_file = tmp_path / "data.csv"
    csv_file.write_text("user_input,reference\nWhat is 2+2?,4\n", encoding="utf-8")
    code, out, err = run(["eval", str(csv_file), "--model", "fake", "--no-judge"], capsys)
    assert code == 0, err
    assert "exact_match" in out and "0.000" in out and "1 model calls" in out


def test_eval_on_a_data_file_of_unknown_shape_says_what_a_suite_and_its_data_are(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = _write_jsonl(tmp_path / "chat.jsonl", [{"prompt": "hi", "completion": "hello"}])
    code, _, err = run(["eval", str(data), "--model", "fake"], capsys)
    assert code == 2
    assert "unknown key" not in err and "invalid YAML" not in err
    assert "chat.jsonl:1" in err and "user_input" in err and "question" in err and "options" in err
    assert "suite" in err and "YAML" in err
    array = tmp_path / "data.json"
    array.write_text(json.dumps([{"user_input": "q", "reference": "a"}]), encoding="utf-8")
    code, _, err = run(["eval", str(array), "--model", "fake"], capsys)
    assert code == 2 and "JSON array" in err and ".jsonl" in err


def test_suite_init_writes_a_suite_yaml_for_a_data_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    data = _write_jsonl(tmp_path / "data" / "faq.jsonl", [{"user_input": "What is 2+2?", "reference": "4"}])
    code, out, err = run(["suite", "init", str(data)], capsys)
    assert code == 0, err
    spec_path = tmp_path / "data" / "faq.yaml"
    assert spec_path.is_file() and str(spec_path) in out
    import yaml

    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    assert spec["name"] == "faq" and spec["kind"] == "qa" and spec["data"] == "faq.jsonl"
    assert spec["metrics"] == ["exact_match", "token_f1", "rouge_l"]
    code, out, _ = run(["suite", "validate", str(spec_path)], capsys)
    assert code == 0 and "1 items, kind qa" in out
    code, _, err = run(["suite", "init", str(data)], capsys)
    assert code == 2 and "already exists" in err and "--force" in err
