"""Resume: a run that crashed, or was killed with SIGKILL, continues from its last checkpoint
to the same adapter and losses as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_ft_train_helpers import quick_config, write_chat_data

from assistant.errors import ConfigError
from assistant.progress import NullProgress
from assistant.settings import Settings
from finetune.adapters import adapter_dir, work_dir
from finetune.store import TrainingStore
from finetune.train.checkpoint import latest_checkpoint
from finetune.train.run import TrainRequest, train
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

ROOT = Path(__file__).resolve().parents[2]


class CrashAt(NullProgress):
    """Raises inside the loop after step ``step``, like a crash mid-run."""

    def __init__(self, step: int) -> None:
        self.step = step

    def metrics(self, step: int, total: int, values: dict[str, float]) -> None:
        if step == self.step:
            raise RuntimeError("simulated crash")


def _weights(name: str, settings: Settings) -> dict[str, torch.Tensor]:
    return load_file(str(adapter_dir(name, settings) / "adapter_model.safetensors"))


def _results(name: str, settings: Settings) -> dict[str, object]:
    manifest = json.loads((adapter_dir(name, settings) / "manifest.json").read_text(encoding="utf-8"))
    return dict(manifest["results"])


def test_a_crashed_run_resumes_to_the_same_result(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    config = quick_config(max_steps=24, checkpoint_every=5, eval_every=4, dropout=0.1)  # dropout: RNG matters
    train(TrainRequest(str(tiny_model_dir), data, "straight", config), fast_settings)

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(TrainRequest(str(tiny_model_dir), data, "crashed", config), fast_settings, progress=CrashAt(13))
    checkpoint = latest_checkpoint(work_dir("crashed", fast_settings))
    assert checkpoint is not None and checkpoint.name == "step-10"
    with pytest.raises(ConfigError, match="unfinished training run"):
        train(TrainRequest(str(tiny_model_dir), data, "crashed", config), fast_settings)

    # flags are ignored on resume: the stored settings win
    resumed = TrainRequest(str(tiny_model_dir), data, "crashed", quick_config(max_steps=999), resume=True)
    train(resumed, fast_settings)
    straight, crashed = _weights("straight", fast_settings), _weights("crashed", fast_settings)
    for name in straight:
        torch.testing.assert_close(crashed[name], straight[name], rtol=1e-5, atol=1e-7)
    a, b = _results("straight", fast_settings), _results("crashed", fast_settings)
    for key in ("steps", "train_loss", "val_loss", "best_step", "tokens_seen"):
        assert a[key] == pytest.approx(b[key]), key
    with TrainingStore(fast_settings.db_path) as store:
        runs = {r.adapter: r for r in store.list_runs()}
        assert runs["crashed"].status == "complete"
        series = store.series(runs["crashed"].run_id, "train_loss")
        reference = store.series(runs["straight"].run_id, "train_loss")
        assert [s for s, _ in series] == list(range(1, 25)), "no step lost or logged twice"
        assert [v for _, v in series] == pytest.approx([v for _, v in reference])


def test_resume_refuses_changed_data_and_a_missing_run(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings
) -> None:
    data = write_chat_data(tmp_path / "data")
    config = quick_config(max_steps=12, checkpoint_every=5)
    with pytest.raises(ConfigError, match="no unfinished training of 'nothing'"):
        train(TrainRequest(str(tiny_model_dir), data, "nothing", config, resume=True), fast_settings)
    with pytest.raises(RuntimeError):
        train(TrainRequest(str(tiny_model_dir), data, "changed", config), fast_settings, progress=CrashAt(7))
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    (data / "manifest.json").write_text(json.dumps({**manifest, "data_hash": "other"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="changed since the run of 'changed' started"):
        train(TrainRequest(str(tiny_model_dir), data, "changed", config, resume=True), fast_settings)


def _checkpoint_step(work: Path) -> int:
    found = latest_checkpoint(work)
    return int(found.name.split("-")[1]) if found else 0


def test_a_run_killed_with_sigkill_resumes_to_the_same_adapter(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, isolated_home: Path
) -> None:
    data = write_chat_data(tmp_path / "data", n_train=80)
    steps = 160
    common = [
        "--base",
        str(tiny_model_dir),
        "--data",
        str(data),
        "--max-steps",
        str(steps),
        "--batch-size",
        "4",
        "--lr",
        "5e-3",
        "--checkpoint-every",
        "10",
        "--eval-every",
        "50",
        "--min-examples",
        "10",
        "--rank",
        "4",
        "--threads",
        "1",
    ]
    env = {**os.environ, "LADDER_HOME": str(isolated_home), "PYTHONPATH": str(ROOT)}
    killed = ["finetune", "train", "--name", "killed", *common]
    process = subprocess.Popen(
        [sys.executable, "-m", "ui.cli.app", *killed],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    work = isolated_home / "adapters" / ".work" / "killed"
    deadline = time.monotonic() + 120
    while _checkpoint_step(work) < 20:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    at_kill = _checkpoint_step(work)
    assert 20 <= at_kill < steps
    assert not (isolated_home / "adapters" / "killed").exists(), "nothing published by the killed run"

    code, _, err = run(["finetune", "train", "--name", "killed", "--resume", "--threads", "1"], capsys)
    assert code == 0, err
    assert f"resuming killed from step {at_kill} of {steps}" in err
    code, _, err = run(["finetune", "train", "--name", "straight", *common], capsys)
    assert code == 0, err

    settings = Settings(home=isolated_home)
    straight, killed_weights = _weights("straight", settings), _weights("killed", settings)
    for name in straight:
        torch.testing.assert_close(killed_weights[name], straight[name], rtol=1e-5, atol=1e-7)
    a, b = _results("straight", settings), _results("killed", settings)
    assert a["steps"] == b["steps"] == steps
    assert b["train_loss"] == pytest.approx(a["train_loss"]) and b["val_loss"] == pytest.approx(a["val_loss"])
