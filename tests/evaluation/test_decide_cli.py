"""``ladder decide`` and ``ladder decisions``: exit codes, reports, languages, stored decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import heavy_modules_after, run, wide_terminal  # noqa: F401  (fixture)
from tests.helpers.decide import rung, write_config


def config(folder: Path, all_billing: bool, **values: object) -> Path:
    script = folder / "fake.json"
    script.write_text(json.dumps({"default": "billing"}), encoding="utf-8")
    values.setdefault("rungs", [rung("prompt")])
    path = write_config(folder, n_dev=20, n_test=10, model=f"fake:{script}", **values)
    if all_billing:
        for split in ("dev", "test"):
            file = folder / f"{split}.jsonl"
            rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
            file.write_text(
                "\n".join(json.dumps({**r, "reference": "billing"}) for r in rows) + "\n", "utf-8"
            )
    return path


def test_a_rung_that_meets_exits_0_and_writes_reports(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(["decide", str(config(tmp_path, True)), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert "Recommended: prompt." in out and "test_confirms" not in out
    assert "The held-out test split confirms prompt." in out
    html = (tmp_path / "out" / "decision.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "target" in html and "exact_match by rung" in html
    data = json.loads((tmp_path / "out" / "decision.json").read_text(encoding="utf-8"))
    assert data["recommended"] == "prompt" and data["status"] == "met"
    assert data["rungs"][0]["dev"]["metrics"]["exact_match"]["mean"] == 1.0
    markdown = (tmp_path / "out" / "decision.md").read_text(encoding="utf-8")
    assert "| **prompt** | evaluated |" in markdown and "## Rungs (dev split)" in markdown


def test_no_rung_meeting_exits_1_and_chinese_reasons(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(["decide", str(config(tmp_path, False)), "--lang", "zh"], capsys)
    assert code == 1
    assert "没有任何一级达到目标" in out and "未达到目标" in out


def test_bad_config_exits_2_before_any_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = config(tmp_path, True, targets={"faithfulness": ">= 0.85"})
    code, _, err = run(["decide", str(path)], capsys)
    assert code == 2 and "faithfulness" in err and "not a metric of the dev suite" in err
    code, out, _ = run(["runs", "list"], capsys)
    assert "no runs yet" in out
    code, _, err = run(["decide", str(config(tmp_path, True)), "--lang", "fr"], capsys)
    assert code == 2 and "language" in err


def test_json_output_and_stored_decisions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = config(tmp_path, True)
    code, out, _ = run(["decide", str(path), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["model_calls"] == 30 and data["explanation"][0] == "Recommended: prompt."
    code, out, _ = run(["decide", str(path), "--json"], capsys)
    assert json.loads(out)["model_calls"] == 0, "the re-run is answered from the cache"
    code, out, _ = run(["decisions", "list"], capsys)
    assert code == 0 and out.count("prompt") == 2 and data["decision_id"] in out
    code, out, _ = run(["decisions", "show", data["decision_id"], "--lang", "zh"], capsys)
    assert code == 0 and "推荐：prompt。" in out
    code, out, _ = run(["decisions", "rm", data["decision_id"]], capsys)
    assert code == 0 and data["decision_id"] in out
    code, _, err = run(["decisions", "show", data["decision_id"]], capsys)
    assert code == 2 and "no decision" in err


def test_decide_help_never_imports_torch() -> None:
    output = heavy_modules_after([["decide", "--help"], ["decisions", "list", "--help"]], ("torch", "peft"))
    assert "HEAVY []" in output and "--allow-finetune" in output


def test_allow_finetune_flag_overrides_the_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = config(tmp_path, True, rungs=[rung("prompt"), "finetune"])
    code, _, err = run(["decide", str(path), "--allow-finetune"], capsys)
    assert code == 2 and "allow_finetune is set but there is no training data" in err
    code, out, _ = run(["decide", str(path), "--no-finetune"], capsys)
    assert code == 0 and "Recommended: prompt." in out
