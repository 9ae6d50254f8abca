"""``ladder monitor``: the series as a table, JSON and CSV; the rule file's mistakes exit 2 with
the file and the rule; an unknown knowledge base exits 3; --help imports no torch."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assistant.feedback import question_hash
from assistant.monitoring import AnswerLogEntry, AnswerLogStore, iso
from assistant.settings import load_settings
from tests.cli_helpers import heavy_modules_after, run, wide_terminal  # noqa: F401

DAY = datetime(2026, 3, 5, 10, tzinfo=UTC)


@pytest.fixture
def logged(isolated_home: Path) -> None:
    """Two answers on 2026-03-05 (100 ms each) and one the day before (200 ms)."""
    entries = [
        AnswerLogEntry(
            iso(DAY - timedelta(days=d)), "cli", f"q{d}", question_hash(f"q{d}"), 10, 100.0 * (d + 1)
        )
        for d in (0, 0, 1)
    ]
    with AnswerLogStore(load_settings().db_path) as store:
        store.add(entries, keep_days=90, now=DAY)


def test_show_prints_the_series_as_a_table_json_and_csv(
    logged: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["monitor", "show", "--days", "3", "--at", "2026-03-05"], capsys)
    assert code == 0 and "Answers served, by day" in out
    code, out, _ = run(["monitor", "show", "--days", "3", "--json", "--at", "2026-03-05"], capsys)
    data = json.loads(out)
    assert code == 0 and [d["questions"] for d in data] == [0, 1, 2]
    assert data[-1]["latency_p95_ms"] == 100.0 and data[-1]["thumbs_down_rate"] is None
    code, out, _ = run(["monitor", "show", "--days", "2", "--csv", "--at", "2026-03-05"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["questions"] for r in rows] == ["1", "2"] and rows[0]["latency_p50_ms"] == "200.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - thumbs_down_rate over 7d >> 0.3\n", "rules[1]: cannot read"),
        ("rules:\n  - ok_rate over 7d > 0.3\n", "rules[1]: unknown metric 'ok_rate'"),
        ("rules:\n  - volume over 0d > 3\n", "the window must be > 0 days"),
        ("rules:\n  - volume over 1d > 3\n  - {when: 3}\n", "rules[2]: a rule is a string or a mapping"),
        ("rules: []\n", "a non-empty `rules:` list"),
        ("rules:\n  - volume over 1d > 3\nalerts: 1\n", "unknown key(s) alerts"),
        ("rules: [\n", "invalid YAML"),
    ],
)
def test_a_bad_rule_file_exits_2_naming_the_file_and_rule(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(text, encoding="utf-8")
    code, _, err = run(["monitor", "check", "--rules", str(rules)], capsys)
    assert code == 2 and str(rules) in err.replace("\n", "") and message in " ".join(err.split()), err


def test_a_rule_fires_with_exit_1_and_says_value_threshold_window_and_sample(
    logged: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: busy\n    when: volume over 1d >= 2 with >= 2 questions\n", encoding="utf-8"
    )
    code, out, _ = run(["monitor", "check", "--rules", str(rules), "--at", "2026-03-05T12:00:00"], capsys)
    assert code == 1
    assert "FIRING busy: volume over 1d = 2 (threshold >= 2; 2 questions, needs >= 2)" in " ".join(
        out.split()
    )
    code, out, _ = run(["monitor", "check", "--rules", str(rules), "--json", "--at", "2001-01-01"], capsys)
    [result] = json.loads(out)
    assert code == 0 and result["state"] == "not enough data" and result["value"] == 0


def test_unknown_knowledge_base_exits_3_and_a_missing_reference_2(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "dev.jsonl"
    suite.write_text(
        "".join(json.dumps({"id": str(i), "user_input": f"q{i}", "reference": "a"}) + "\n" for i in range(3)),
        encoding="utf-8",
    )
    code, _, err = run(["monitor", "drift", "--suite", str(suite), "--kb", "nope"], capsys)
    assert code == 3 and "nope" in err
    code, _, err = run(["monitor", "drift"], capsys)
    assert code == 2 and "drift needs a reference" in err
    code, _, err = run(["monitor", "drift", "--decision", "nope"], capsys)
    assert code == 2 and "no decision 'nope'" in err
    code, _, err = run(["monitor", "show", "--at", "yesterday"], capsys)
    assert code == 2 and "--at: cannot read 'yesterday'" in err


def test_monitor_help_imports_no_torch() -> None:
    out = heavy_modules_after([["monitor", "--help"], ["monitor", "check", "--help"]])
    assert "HEAVY []" in out, out
