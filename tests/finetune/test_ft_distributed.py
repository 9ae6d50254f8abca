"""Training in two processes (gloo on CPU) takes the steps one process takes.

Same data, same settings, same global batch (``batch_size * grad_accum`` examples a step): one
process trains in this test's process, two are launched by ``ladder finetune train
--processes 2``. The tolerance is derived, not tuned: in fp32 each step's loss and gradient
differ between the two only by the order of summation (two half-batches all-reduced against one
batch; micro-batch shapes change the matmul blocking), a relative difference of a few float32
epsilons (1.2e-7) per reduction, about 1e-6 of a loss near 1. AdamW divides each update by
the root of the second moment, which keeps the relative size of such differences instead of
damping them, and they compound over the steps: over 12 steps at lr 1e-2 they stay below
1e-4 (measured: see the printed max |diff|, a few 1e-6). A real fault is far outside it: a
process that skipped the all-reduce, a batch split twice, or a loss normalised by the local
instead of the global target count moves the loss by 1e-2 or more, and a gradient scaled by
the world size shows in the logged gradient norm (compared too, which AdamW's scale
invariance would otherwise hide).
"""

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
from test_ft_train_helpers import quick_config, write_chat_data

from assistant.settings import Settings
from finetune.adapters import adapter_dir
from finetune.store import TrainingStore
from finetune.train import distributed
from finetune.train.checkpoint import LoopState, latest_checkpoint, restore_checkpoint, save_checkpoint
from finetune.train.run import TrainRequest, train
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

ROOT = Path(__file__).resolve().parents[2]
LOSS_TOL = 1e-4  # see the module docstring
LOGIT_TOL = 1e-3  # logits of the two adapters: |logit| ~ 10, the weights within ~1e-5 relative
SETTINGS = {"max_steps": 12, "batch_size": 4, "grad_accum": 2, "eval_every": 4}


def _cli_args(tiny_model_dir: Path, data: Path, **changes: object) -> list[str]:
    values: dict[str, object] = {
        **SETTINGS,
        "lr": 1e-2,
        "min_examples": 10,
        "checkpoint_every": 0,
        "rank": 8,
        "alpha": 16,
    }
    values.update(changes)
    args = ["--base", str(tiny_model_dir), "--data", str(data), "--dropout", "0", "--threads", "2"]
    for key, value in values.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _launch(args: list[str], home: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "LADDER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "ui.cli.app", "finetune", "train", "--processes", "2", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the launcher and its workers: one group to kill
    )


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def _series(settings: Settings, adapter: str, metric: str) -> list[tuple[int, float]]:
    with TrainingStore(settings.db_path) as store:
        run = next(r for r in store.list_runs() if r.adapter == adapter)
        return store.series(run.run_id, metric)


def _logits(tiny_model_dir: Path, adapter: Path) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter))
    model.eval()
    prompts = ["Label this: the a red", "Label this: of blue", "Label this: and in to green"]
    with torch.no_grad():
        return torch.cat([model(**tokenizer(p, return_tensors="pt")).logits[0] for p in prompts])


def _max_diff(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> float:
    assert [s for s, _ in a] == [s for s, _ in b], "the same steps logged"
    return max(abs(x - y) for (_, x), (_, y) in zip(a, b, strict=True))


def test_shard_group_deals_each_example_once_balanced_by_tokens() -> None:
    lengths = [5, 50, 7, 40, 9, 30, 11, 20]
    group = [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert distributed.shard_group(group, lengths, 4, 0, 1) == ([[0, 1, 2, 3], [4, 5, 6, 7]], True)
    shares = [distributed.shard_group(group, lengths, 4, rank, 2) for rank in range(2)]
    dealt = sorted(i for micros, real in shares for micro in micros for i in micro)
    assert dealt == list(range(8)) and all(real for _, real in shares)
    loads = [sum(lengths[i] for micro in micros for i in micro) for micros, _ in shares]
    assert abs(loads[0] - loads[1]) <= max(lengths) // 4, loads  # 86 vs 86 here
    # a share larger than batch_size is cut into micro-batches, in the step's order
    micros, _ = distributed.shard_group(group, [1] * 8, 2, 0, 2)
    assert micros == [[0, 2], [4, 6]]
    # fewer examples than processes: the idle one runs an example with weight 0
    assert distributed.shard_group([[3]], lengths, 4, 1, 2) == ([[3]], False)


def test_each_process_resumes_with_its_own_random_state(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    torch.manual_seed(1)
    rank0 = {"torch": torch.get_rng_state()}
    torch.manual_seed(2)
    rank1 = {"torch": torch.get_rng_state()}
    expected = torch.rand(3)
    save_checkpoint(tmp_path, LoopState(step=3), model, optimizer, scheduler, None, [rank0, rank1])
    folder = latest_checkpoint(tmp_path)
    assert folder is not None
    torch.manual_seed(99)
    restore_checkpoint(folder, model, optimizer, scheduler, "cpu", rank=1)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(1)
    first = torch.rand(3)
    restore_checkpoint(folder, model, optimizer, scheduler, "cpu", rank=0)
    assert torch.equal(torch.rand(3), first)
    torch.manual_seed(5)
    own = torch.rand(3)
    torch.manual_seed(5)
    restore_checkpoint(folder, model, optimizer, scheduler, "cpu", rank=2)  # none saved: keeps its own
    assert torch.equal(torch.rand(3), own)


def test_two_processes_train_like_one(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings, isolated_home: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    train(TrainRequest(str(tiny_model_dir), data, "one", quick_config(**SETTINGS)), fast_settings)
    out = _finish(
        _launch(["--name", "two", "--json", *_cli_args(tiny_model_dir, data)], isolated_home, tmp_path)
    )
    manifest = json.loads(out.strip().splitlines()[-1])  # printed once, by the main process
    assert manifest["results"]["steps"] == SETTINGS["max_steps"]

    diffs = {
        metric: _max_diff(_series(fast_settings, "one", metric), _series(fast_settings, "two", metric))
        for metric in ("train_loss", "val_loss", "grad_norm")
    }
    print(f"max |diff| 1 vs 2 processes: {diffs}")
    assert diffs["train_loss"] < LOSS_TOL and diffs["val_loss"] < LOSS_TOL
    assert diffs["grad_norm"] < 1e-3 * max(v for _, v in _series(fast_settings, "one", "grad_norm"))
    losses = [v for _, v in _series(fast_settings, "two", "train_loss")]
    assert losses[-1] < losses[0] * 0.8, "it learned"
    one = _logits(tiny_model_dir, adapter_dir("one", fast_settings))
    two = _logits(tiny_model_dir, adapter_dir("two", fast_settings))
    base_moved = one.abs().max().item()
    print(f"max |logit diff| {float((one - two).abs().max()):.2e} (logits up to {base_moved:.1f})")
    torch.testing.assert_close(two, one, rtol=0, atol=LOGIT_TOL)
    tokens_one = json.loads((adapter_dir("one", fast_settings) / "manifest.json").read_text())["results"]
    assert manifest["results"]["tokens_seen"] == tokens_one["tokens_seen"], (
        "every example once, by one process"
    )


def test_two_processes_killed_resume_with_two(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings, isolated_home: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    config = {**SETTINGS, "max_steps": 40, "checkpoint_every": 4, "eval_every": 8}
    train(TrainRequest(str(tiny_model_dir), data, "one", quick_config(**config)), fast_settings)
    args = _cli_args(tiny_model_dir, data, **config)
    process = _launch(["--name", "two", *args], isolated_home, tmp_path)
    work = isolated_home / "adapters" / ".work" / "two"
    deadline = time.monotonic() + 240
    while latest_checkpoint(work) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher and both workers, at once
    process.communicate()
    checkpoint = latest_checkpoint(work)
    assert checkpoint is not None and int(checkpoint.name.split("-")[1]) < 40, "killed mid-run"
    assert not adapter_dir("two", fast_settings).exists()

    _finish(_launch(["--name", "two", "--resume", *args], isolated_home, tmp_path))
    steps = [s for s, _ in _series(fast_settings, "two", "train_loss")]
    assert steps == list(range(1, 41)), "no step lost or logged twice"
    diff = _max_diff(_series(fast_settings, "one", "train_loss"), _series(fast_settings, "two", "train_loss"))
    print(f"max |train loss diff| 1 process vs 2 killed and resumed: {diff:.2e}")
    assert diff < LOSS_TOL
    one = _logits(tiny_model_dir, adapter_dir("one", fast_settings))
    torch.testing.assert_close(
        _logits(tiny_model_dir, adapter_dir("two", fast_settings)), one, rtol=0, atol=LOGIT_TOL
    )


def test_processes_must_be_positive(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    args = ["finetune", "train", "--name", "x", "--processes", "0", *_cli_args(tiny_model_dir, data)]
    code, out, err = run(args, capsys)
    assert code == 2 and "--processes must be >= 1" in out + err


def test_launch_stops_the_others_when_one_process_fails() -> None:
    """Rank 1 fails at once; rank 0 would wait for it for a minute (as in an all-reduce)."""
    script = "import os, sys, time; rank = os.environ['RANK']; time.sleep(60) if rank == '0' else sys.exit(3)"
    started = time.monotonic()
    assert distributed.launch([sys.executable, "-c", script], 2) == 3
    assert time.monotonic() - started < 30
    env = "import os; assert os.environ['WORLD_SIZE'] == '2' and os.environ['MASTER_ADDR'] == '127.0.0.1'"
    assert distributed.launch([sys.executable, "-c", env], 2) == 0


@pytest.mark.parametrize("peft", ["full", "prompt-tuning"])
def test_two_processes_train_other_methods_like_one(
    peft: str, tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings, isolated_home: Path
) -> None:
    """The loop trains what has requires_grad, whatever the method: every weight, or a prompt."""
    data = write_chat_data(tmp_path / "data")
    short = {**SETTINGS, "max_steps": 6, "eval_every": 3}
    train(TrainRequest(str(tiny_model_dir), data, "one", quick_config(peft=peft, **short)), fast_settings)
    _finish(
        _launch(
            ["--name", "two", "--peft", peft, *_cli_args(tiny_model_dir, data, **short)],
            isolated_home,
            tmp_path,
        )
    )
    for metric in ("train_loss", "val_loss", "grad_norm"):
        one, two = _series(fast_settings, "one", metric), _series(fast_settings, "two", metric)
        assert _max_diff(one, two) < LOSS_TOL * max(1.0, max(v for _, v in one)), metric
