"""Back to the ladder: promoted feedback becomes a new dev/test split (a question the decision's
training data repeats is dropped), the decision runs again on it with the fake backend, and the
old and new verdicts are shown side by side (API and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from assistant.errors import ConfigError
from assistant.feedback import promote, record_feedback
from assistant.settings import Settings, load_settings
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.monitor import retest
from evaluation.suites.source import SuiteFiles
from tests.cli_helpers import run, wide_terminal  # noqa: F401
from tests.helpers.decide import CaseFake, case_text, reference, rung, write_config

# Right on the decision's own cases, wrong on every question users asked since.
FAKE = {"prompt": lambda split, index: split in ("dev", "test")}


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


def decided(settings: Settings, tmp_path: Path, leaked: int | None = None) -> str:
    """A met decision over cases; ``leaked``: its fine-tuning data holds that feedback question."""
    data = tmp_path / "train"
    data.mkdir()
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Sort ticket 1"},
                {"role": "assistant", "content": "billing"},
            ]
        }
    ]
    if leaked is not None:
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": case_text("fb", leaked)},
                    {"role": "assistant", "content": reference("fb", leaked)},
                ]
            }
        )
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = write_config(
        tmp_path,
        n_dev=20,
        n_test=20,
        rungs=[rung("prompt")],
        finetune={"data": "train"},
        search={"enabled": False},
        learning_curve=False,
    )
    decision = run_decision(load_decision_config(path), settings, backend=CaseFake(FAKE))
    assert decision.status == "met"
    return decision.decision_id


def promote_feedback(settings: Settings, n: int) -> None:
    for i in range(n):
        item = record_feedback(
            settings,
            question=case_text("fb", i),
            answer="shipping",
            rating="down",
            correction=reference("fb", i),
            session_id=f"s{i}",
            source="chat",
        )
        promote(settings, item.id, "suite", suites=SuiteFiles())


def test_retest_splits_promoted_feedback_and_shows_the_verdict_change(
    settings: Settings, tmp_path: Path
) -> None:
    decision_id = decided(settings, tmp_path, leaked=3)
    promote_feedback(settings, 12)
    result = retest(settings, decision_id, backend=CaseFake(FAKE))
    assert result.feedback_items == 12
    assert [d["item"] for d in result.dropped] == ["feedback-4"]  # case fb 3 is the 4th rating
    assert result.dropped[0]["match"] == "exact" and result.dropped[0]["training"].endswith("train.jsonl:2")
    assert (result.dev_items, result.test_items) == (6, 5)
    dev = [json.loads(line) for line in Path(result.dev).with_suffix(".jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in Path(result.test).with_suffix(".jsonl").read_text().splitlines()]
    questions = [r["user_input"] for r in dev + test]
    assert len(set(questions)) == 11 and case_text("fb", 3) not in questions  # disjoint, leak left out
    assert all(r["reference"] in ("billing", "shipping", "returns", "account") for r in dev + test)
    assert (result.old.decision_id, result.old.status, result.old.recommended) == (
        decision_id,
        "met",
        "prompt",
    )
    assert result.new.status == "not_met" and result.new.recommended is None and result.changed
    assert (
        result.old.rungs[0]["dev"]["exact_match"] == 1.0 and result.new.rungs[0]["dev"]["exact_match"] == 0.0
    )
    # the new decision is stored with a config of its own that reads the new suites
    config = yaml.safe_load(Path(result.config).read_text())
    assert config["suites"] == {"dev": result.dev, "test": result.test}
    assert Path(config["finetune"]["data"]).is_absolute() and config["name"] == "cases"


def test_too_few_promoted_items_is_refused_with_the_count(settings: Settings, tmp_path: Path) -> None:
    decision_id = decided(settings, tmp_path)
    promote_feedback(settings, 2)
    with pytest.raises(ConfigError, match=r"2 promoted feedback item\(s\) usable .* at least 4"):
        retest(settings, decision_id, backend=CaseFake(FAKE))


def test_ladder_monitor_retest_prints_old_and_new_side_by_side(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import evaluation.decide.engine as engine

    decided(settings, tmp_path)
    promote_feedback(settings, 6)
    real = engine.run_decision
    monkeypatch.setattr(engine, "run_decision", lambda *a, **k: real(*a, **{**k, "backend": CaseFake(FAKE)}))
    code, out, _ = run(["monitor", "retest", "--decision", "latest"], capsys)
    assert code == 1, out  # the new decision does not meet: exit 1, like ladder decide
    assert "old and new verdicts" in out and "met" in out and "not_met" in out
    assert "3 dev + 3 test items" in out and "the verdict changed" in out


def test_a_decisions_drift_reference_is_its_dev_suite_read_again(settings: Settings, tmp_path: Path) -> None:
    from evaluation.monitor import reference_from_decision

    decision_id = decided(settings, tmp_path)
    reference = reference_from_decision(settings, "latest")
    assert reference.questions == [case_text("dev", i) for i in range(20)]
    assert decision_id in reference.label and reference.kb is None
    (tmp_path / "decide.yaml").unlink()
    with pytest.raises(ConfigError, match="not there any more: its dev suite cannot be read"):
        reference_from_decision(settings, decision_id)
    with pytest.raises(ConfigError, match="not there any more: it cannot be run again"):
        retest(settings, decision_id)
