"""The loss line `ladder finetune train` prints at the end compares like with like: the mean of
the first k logged steps against the mean of the last k, labelled, for SFT and DPO alike.

It used to print the first step against a 10-step tail mean for SFT ("3.0155 → 3.5856" while
the last step was 2.53, which reads as training making things worse) and first → last for DPO.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

# 30 steps: a noisy start (first step 3.0155, mean of the first 6 = 3.6000), a late spike in
# the tail, and a last step of 2.53 (mean of the last 6 = 2.6000).
LOSSES = [3.0155, 4.2, 3.9, 3.7, 3.5, 3.2845] + [3.0] * 18 + [2.6, 2.7, 2.5, 2.6, 2.67, 2.53]


def _store_series(run_id_name: str, losses: list[float]) -> str:
    from assistant.settings import load_settings
    from finetune.store import TrainingStore

    with TrainingStore(load_settings().db_path) as store:
        run_id = store.create_run(run_id_name, "tiny", "sft", len(losses), {}, {})
        for step, loss in enumerate(losses, start=1):
            store.log_step(run_id, step, {"train_loss": loss})
    return run_id


def _manifest(run_id: str, results: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "results": results, "base_model": {"ref": "tiny"}, "wall_time_s": 1.0,
            "device": "cpu"}  # fmt: skip


def test_sft_summary_compares_the_mean_of_the_first_and_last_steps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import finetune.train.run as train_module
    from finetune.train.run import TrainResult

    run_id = _store_series("sft1", LOSSES)
    tail = sum(LOSSES[-10:]) / 10  # what the manifest calls train_loss
    results = {
        "status": "complete", "steps": 30, "epochs": 3.0, "train_loss": tail, "last_train_loss": 2.53,
        "first_train_loss": 3.0155, "val_loss": 2.9, "first_val_loss": 3.4, "best_step": 30,
        "tokens_per_s": 100.0, "monitor": {"verdict": None, "message": None},
    }  # fmt: skip
    monkeypatch.setattr(train_module, "prepare", lambda request, settings: object())
    monkeypatch.setattr(
        train_module,
        "run_training",
        lambda prepared, settings, progress=None: TrainResult(
            "sft1", tmp_path, "complete", _manifest(run_id, results)
        ),
    )
    code, out, err = run(["finetune", "train", "--base", "tiny", "--name", "sft1"], capsys)
    assert code == 0, err
    assert "train loss 3.6000 → 2.6000 (mean of steps 1-6 → 25-30)" in out, out
    assert "3.5856" not in out and f"{tail:.4f}" not in out


def test_dpo_summary_uses_the_same_comparison(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import finetune.train.dpo as dpo_module
    from finetune.train.run import TrainResult

    run_id = _store_series("dpo1", LOSSES)
    results = {"steps": 30, "first_train_loss": 3.0155, "train_loss": 2.53, "margin_before": 0.1,
               "margin_after": 0.9}  # fmt: skip
    monkeypatch.setattr(
        dpo_module,
        "train_dpo",
        lambda request, settings, progress=None, suites=None: TrainResult(
            "dpo1", tmp_path, "complete", _manifest(run_id, results)
        ),
    )
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("{}\n", encoding="utf-8")
    code, out, err = run(
        ["finetune", "train", "--method", "dpo", "--base", "tiny", "--name", "dpo1", "--data", str(pairs)],
        capsys,
    )
    assert code == 0, err
    assert "train loss 3.6000 → 2.6000 (mean of steps 1-6 → 25-30)" in out, out


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([2.0, 1.0], "2.0000 → 1.0000 (step 1 → step 2)"),
        ([4.0, 3.0, 2.0, 1.0, 1.0], "4.0000 → 1.0000 (step 1 → step 5)"),
        ([1.0] * 5 + [0.5] * 5, "1.0000 → 0.5000 (mean of steps 1-2 → 9-10)"),
        ([3.0] * 100 + [1.0] * 10, "3.0000 → 1.0000 (mean of steps 1-10 → 101-110)"),
    ],
)
def test_loss_change_windows(losses: list[float], expected: str) -> None:
    from ui.cli.finetune.train import loss_change

    assert loss_change(list(enumerate(losses, start=1))) == expected


def test_loss_change_without_a_series_falls_back_to_first_and_last_step() -> None:
    from ui.cli.finetune.train import loss_change

    assert loss_change([], first=3.0, last=2.5) == "3.0000 → 2.5000 (first step → last step)"
    assert loss_change([]) == "n/a"
