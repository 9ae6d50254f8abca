"""DPO with trl on the tiny model: pairs from the feedback loop train a LoRA adapter that widens
the chosen-over-rejected log-prob margin; the manifest records method, beta and the pairs'
hash; bad pairs are refused before anything is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from assistant.settings import Settings
from evaluation.suites.source import SuiteFiles
from finetune.adapters import adapter_dir, read_manifest
from finetune.data.preference import load_pairs
from finetune.store import TrainingStore
from finetune.train.data import TrainDataError
from finetune.train.dpo import DPORequest, DPOSettings, train_dpo

SUITES = SuiteFiles()  # the leakage check reads the evaluation suites with it
FACTS = [
    ("How long is the return window?", "30 days", "7 days"),
    ("Which colour is the logo?", "blue", "green"),
    ("Who approves refunds?", "the finance team", "the warehouse"),
    ("Where is the head office?", "Hangzhou", "Shanghai"),
    ("What is the support e-mail?", "help at qinghe", "sales at qinghe"),
    ("How many stores are there?", "twelve", "three"),
]


def write_pairs(settings: Settings) -> Path:
    """Pairs the way the feedback loop makes them: ratings promoted with --to pairs."""
    from assistant.feedback import promote, record_feedback

    for question, right, wrong in FACTS:
        item = record_feedback(settings, question=question, answer=wrong, rating="down", correction=right)
        promote(settings, item.id, "pairs", suites=SUITES)
    return settings.home / "feedback" / "feedback_pairs.jsonl"


def quick(**changes: object) -> DPOSettings:
    values: dict[str, object] = {"rank": 8, "alpha": 16, "learning_rate": 5e-3, "max_steps": 16,
                                 "batch_size": 3, "min_pairs": 3, "beta": 0.1}  # fmt: skip
    values.update(changes)
    return DPOSettings(**values)  # type: ignore[arg-type]


def test_dpo_widens_the_margin_and_registers_the_adapter(
    tiny_model_dir: Path, fast_settings: Settings
) -> None:
    pairs = write_pairs(fast_settings)
    result = train_dpo(DPORequest(str(tiny_model_dir), pairs, "prefs", quick()), fast_settings, suites=SUITES)
    res = result.manifest["results"]
    assert res["steps"] == 16 and res["status"] == "complete"
    assert res["margin_after"] > res["margin_before"] + 1.0, res
    assert res["train_loss"] < res["first_train_loss"], res
    manifest = read_manifest("prefs", fast_settings)
    assert manifest["method"] == "dpo" and manifest["mode"] == "dpo" and manifest["beta"] == 0.1
    assert manifest["data"]["pairs_hash"] == hashlib.sha256(pairs.read_bytes()).hexdigest()
    assert manifest["data"]["pairs"] == len(FACTS) and manifest["base_model"]["ref"] == str(tiny_model_dir)
    assert manifest["data"]["leaks"] == [] and manifest["data"]["pairs_in_file"] == len(FACTS)
    assert "demo_qa" in manifest["data"]["leakage_checked"], "the shipped suites are always checked"
    folder = adapter_dir("prefs", fast_settings)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["peft_type"] == "LORA"
    with TrainingStore(fast_settings.db_path) as store:
        (run,) = store.list_runs("prefs")
        assert run.status == "complete" and run.mode == "dpo"
        assert [step for step, _ in store.series(run.run_id, "train_loss")] == list(range(1, 17))


def test_the_dpo_adapter_loads_by_name_and_shifts_the_model(
    tiny_model_dir: Path, fast_settings: Settings
) -> None:
    from assistant.service import get_backend

    pairs = write_pairs(fast_settings)
    train_dpo(DPORequest(str(tiny_model_dir), pairs, "prefs", quick()), fast_settings, suites=SUITES)
    question, right, wrong = FACTS[0]
    base = get_backend(str(tiny_model_dir), fast_settings)
    tuned = get_backend(f"{tiny_model_dir}+prefs", fast_settings)
    (before,) = base.score_choices([question], [right, wrong])
    (after,) = tuned.score_choices([question], [right, wrong])
    assert after[0] - after[1] > before[0] - before[1]


def test_bad_pairs_and_names_are_refused_before_anything_is_written(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a"}\n')
    with pytest.raises(TrainDataError, match=r"bad.jsonl:1: missing rejected"):
        train_dpo(DPORequest(str(tiny_model_dir), bad, "x", quick()), fast_settings, suites=SUITES)
    bad.write_text('{"prompt": "q", "chosen": "same", "rejected": "same"}\n')
    with pytest.raises(TrainDataError, match="no preference"):
        load_pairs(bad, 1)
    pairs = write_pairs(fast_settings)
    with pytest.raises(TrainDataError, match="at least 50"):
        train_dpo(
            DPORequest(str(tiny_model_dir), pairs, "x", quick(min_pairs=50)), fast_settings, suites=SUITES
        )
    with pytest.raises(Exception, match="bad adapter name"):
        train_dpo(DPORequest(str(tiny_model_dir), pairs, "a/b", quick()), fast_settings, suites=SUITES)
    assert not adapter_dir("x", fast_settings).exists()
    with TrainingStore(fast_settings.db_path) as store:
        assert store.list_runs() == []


def test_cli_train_method_dpo(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.settings import load_settings
    from tests.cli_helpers import run

    pairs = write_pairs(load_settings())
    common = ["finetune", "train", "--base", str(tiny_model_dir), "--name", "p1", "--threads", "1"]
    code, _, err = run([*common, "--method", "ppo", "--data", str(pairs)], capsys)
    assert code == 2 and "unknown --method" in err
    code, _, err = run([*common, "--method", "dpo"], capsys)
    assert code == 2 and "DPO needs preference pairs" in err
    code, _, err = run([*common, "--method", "dpo", "--data", str(pairs)], capsys)
    assert code == 2 and "at least 50" in err, "the --min-examples default guards DPO too"
    args = [*common, "--method", "dpo", "--data", str(pairs), "--beta", "0.2", "--lr", "5e-3",
            "--max-steps", "4", "--batch-size", "3", "--rank", "4", "--min-examples", "3",
            "--json"]  # fmt: skip
    code, out, _ = run(args, capsys)
    manifest = json.loads(out)
    assert code == 0 and manifest["method"] == "dpo" and manifest["beta"] == 0.2
    assert manifest["results"]["steps"] == 4 and manifest["hyperparameters"]["rank"] == 4
    code, out, _ = run(["finetune", "list"], capsys)
    assert code == 0 and "p1" in out and "dpo" in out
