"""Train a LoRA adapter: SFT on chat data or continued pre-training on raw text.

``train(TrainRequest(base, data, name, config), settings)`` checks everything a user can get
wrong first (the name, the base model, every data line, the example count, the mode)
and writes nothing until all of it holds. Then it tokenizes (loss on the assistant's tokens
only, see ``train_data.encode_chat``), trains (``train_loop.Loop``) with checkpoints under
``adapters/.work/<name>/``, and publishes ``adapters/<name>/``: a PEFT folder with
``manifest.json``. ``resume=True`` continues the unfinished run of that name from its last
checkpoint, with the settings it was started with, to the same result as an uninterrupted run.

Device: CUDA when present (bf16 where supported), else CPU in fp32 (bf16 only when the
``dtype`` setting asks for it: on most CPUs it is slower and it trains worse).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, LadderError
from assistant.progress import NullProgress, Progress
from assistant.settings import Settings
from finetune import adapters
from finetune.store import DIVERGED, FAILED, TrainingStore
from finetune.train.config import TrainConfig
from finetune.train.data import DataSource, EncodedSet, TrainDataError, encode_records, load_data

RUN_FILE = "run.json"


class TrainingDiverged(LadderError):
    """The loss curve went bad (NaN or diverging) and training stopped."""

    exit_code = 1


@dataclass
class TrainRequest:
    base: str
    data: Path | None  # None only with resume (the run's own data)
    name: str
    config: TrainConfig = field(default_factory=TrainConfig)
    overwrite: bool = False
    resume: bool = False
    keep_checkpoints: bool = False


@dataclass
class Prepared:
    """A request that passed every check; nothing has been written yet."""

    request: TrainRequest
    config: TrainConfig
    base_ref: str
    base_dir: Path
    data: DataSource
    work: Path
    stored: dict[str, Any] | None  # run.json of the run being resumed


@dataclass
class TrainResult:
    name: str
    path: Path
    status: str
    manifest: dict[str, Any]


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped is a zombie: not training any more
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] not in "ZX"
    except (OSError, IndexError):
        return True


def prepare(request: TrainRequest, settings: Settings) -> Prepared:
    """Check the request; raise a ``LadderError`` saying what to fix. Writes nothing."""
    name = adapters.check_name(request.name)
    work = adapters.work_dir(name, settings)
    run_file = work / RUN_FILE
    stored = None
    config = request.config
    base, data_path = request.base, request.data
    if data_path is None and not request.resume:
        raise ConfigError("no training data given", hint="pass --data DIR (or a JSONL file)")
    if request.resume:
        if not run_file.is_file():
            raise ConfigError(
                f"no unfinished training of {name!r} to resume", hint="start it without --resume"
            )
        stored = json.loads(run_file.read_text(encoding="utf-8"))
        if _pid_alive(stored.get("pid")):
            raise ConfigError(f"{name!r} is being trained right now by process {stored['pid']}")
        config = TrainConfig.from_dict(stored["config"])
        base, data_path = stored["base"], Path(stored["data"])
    else:
        if adapters.exists(name, settings) and not request.overwrite:
            raise adapters.AdapterExists(
                f"an adapter named {name!r} exists", hint="choose another --name, or pass --overwrite"
            )
        if run_file.is_file() and not request.overwrite:
            raise ConfigError(
                f"{name!r} has an unfinished training run",
                hint="pass --resume to continue it, or --overwrite to start again",
            )
    base_ref, base_dir = adapters.resolve_base(base, settings)
    assert data_path is not None
    data = load_data(data_path, config.mode, config.min_examples)
    if stored is not None and stored["data_hash"] != data.data_hash:
        raise ConfigError(
            f"the data in {data_path} changed since the run of {name!r} started",
            hint="resume with the same data, or start again with --overwrite",
        )
    return Prepared(request, config, base_ref, base_dir, data, work, stored)


def _device_and_dtype(settings: Settings) -> tuple[str, Any]:
    import torch

    from assistant.backends.hf.device import pick_device, pick_dtype

    device = pick_device(settings.device)
    if device == "cuda":
        return device, pick_dtype(settings.dtype, device, settings.home)
    return device, torch.bfloat16 if settings.dtype == "bfloat16" else torch.float32


def _encode(tokenizer: Any, prepared: Prepared, progress: Progress) -> tuple[EncodedSet, EncodedSet]:
    cfg = prepared.config
    progress.start("tokenizing", total=len(prepared.data.train) + len(prepared.data.val))
    train = encode_records(tokenizer, prepared.data.train, cfg.max_seq_len)
    val = encode_records(tokenizer, prepared.data.val, cfg.max_seq_len)
    progress.advance(len(prepared.data.train) + len(prepared.data.val))
    if not train.examples:
        raise TrainDataError(
            f"no training example has a token to learn within max_seq_len={cfg.max_seq_len}",
            hint="raise --max-seq-len",
        )
    if train.truncated or train.dropped:
        progress.note(
            f"{train.truncated} example(s) cut to {cfg.max_seq_len} tokens; "
            f"{train.dropped} dropped (nothing left to learn)"
        )
    if not val.examples:
        progress.note("no validation data: no val loss, no early stopping")
    return train, val


def train(request: TrainRequest, settings: Settings, progress: Progress | None = None) -> TrainResult:
    """Check, train, publish. Raises ``TrainingDiverged`` when the monitor stops the run."""
    return run_training(prepare(request, settings), settings, progress)


def run_training(prepared: Prepared, settings: Settings, progress: Progress | None = None) -> TrainResult:
    """Train and publish. Under a launcher (``distributed``), every process runs this: the
    main one writes the run store, the work folder and the adapter; the others train their
    share of each step and return the main process's status with an empty manifest."""
    import torch

    from finetune.train import distributed
    from finetune.train.methods import build_model

    device, dtype = _device_and_dtype(settings)
    dist, device = distributed.setup(device)
    torch.set_num_threads(distributed.threads_per_process(settings.threads, dist.local_world_size))
    progress = (progress or NullProgress()) if dist.is_main else NullProgress()
    try:
        setup_started = time.perf_counter()
        progress.start(f"loading {prepared.base_ref}")
        model, tokenizer = build_model(prepared.base_dir, prepared.config, device, dtype)
        train_set, val_set = _encode(tokenizer, prepared, progress)
        setup_s = time.perf_counter() - setup_started
        built = _Built(dist, model, tokenizer, train_set, val_set, device, dtype, setup_s)
        if not dist.is_main:
            dist.barrier()  # the main process has set up the work folder
            return _train_worker(prepared, settings, built)
        return _train_main(prepared, settings, progress, built)
    finally:
        dist.close()


@dataclass
class _Built:
    """What every process of a run sets up before training: its place, the model, the data."""

    dist: Any
    model: Any
    tokenizer: Any
    train_set: EncodedSet
    val_set: EncodedSet
    device: str
    dtype: Any
    setup_s: float

    def loop(self, prepared: Prepared, store: TrainingStore | None, progress: Progress) -> Any:
        from finetune.train.loop import Loop, pad_id_of

        return Loop(
            self.model,
            prepared.config,
            self.train_set.examples,
            self.val_set.examples,
            pad_id_of(self.tokenizer),
            self.device,
            prepared.work,
            "",
            store,
            progress,
            dist=self.dist,
        )


def _train_worker(prepared: Prepared, settings: Settings, built: _Built) -> TrainResult:
    """A process other than the main one: the same steps, nothing written."""
    from finetune.train.checkpoint import latest_checkpoint

    loop = built.loop(prepared, None, NullProgress())
    checkpoint = latest_checkpoint(prepared.work) if prepared.stored else None
    state = loop.restore(checkpoint) if checkpoint else loop.fresh_state()
    outcome = loop.run(state)
    if outcome.status == DIVERGED:
        message = outcome.diagnosis.message if outcome.diagnosis else "the loss diverged"
        raise TrainingDiverged(f"training stopped at step {outcome.state.step}: {message}")
    name = prepared.request.name
    return TrainResult(name, adapters.adapter_dir(name, settings), outcome.status, {})


def _train_main(prepared: Prepared, settings: Settings, progress: Progress, built: _Built) -> TrainResult:
    from finetune.train.checkpoint import latest_checkpoint

    cfg, name = prepared.config, prepared.request.name
    train_set, val_set, dist = built.train_set, built.val_set, built.dist
    # From here on, things are written.
    if prepared.stored is None and prepared.work.exists():
        shutil.rmtree(prepared.work)  # --overwrite of an unfinished run
    prepared.work.mkdir(parents=True, exist_ok=True)
    dist.barrier()  # the other processes may read the work folder now
    store = TrainingStore(settings.db_path)
    try:
        data_info = {
            "path": str(prepared.data.path),
            "data_hash": prepared.data.data_hash,
            "train_examples": len(train_set.examples),
            "val_examples": len(val_set.examples),
        }
        loop = built.loop(prepared, store, progress)
        on_metrics = getattr(progress, "metrics", None)
        loop.on_metrics = on_metrics if callable(on_metrics) else None
        checkpoint = latest_checkpoint(prepared.work) if prepared.stored else None
        if prepared.stored is not None:
            loop.run_id = str(prepared.stored["run_id"])
            state = loop.restore(checkpoint) if checkpoint else loop.fresh_state()
            store.resume_run(loop.run_id, state.step, os.getpid())
            progress.note(f"resuming {name} from step {state.step} of {loop.total_steps}")
        else:
            loop.run_id = store.create_run(
                name, prepared.base_ref, cfg.mode, loop.total_steps, cfg.to_dict(), data_info, pid=os.getpid()
            )
            state = loop.fresh_state()
        if dist.active:
            progress.note(f"training in {dist.world_size} processes")
        run_info = {
            "run_id": loop.run_id,
            "adapter": name,
            "base": prepared.base_ref,
            "data": str(prepared.data.path),
            "data_hash": prepared.data.data_hash,
            "config": cfg.to_dict(),
            "pid": os.getpid(),
        }
        (prepared.work / RUN_FILE).write_text(json.dumps(run_info, indent=2), encoding="utf-8")
        try:
            outcome = loop.run(state)
        except BaseException as exc:
            store.finish(loop.run_id, FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        if outcome.status == DIVERGED:
            message = outcome.diagnosis.message if outcome.diagnosis else "the loss diverged"
            store.finish(loop.run_id, DIVERGED, error=message)
            raise TrainingDiverged(
                f"training stopped at step {outcome.state.step}: {message}",
                hint=f"nothing was published; fix the data or lower --lr, then run again with --overwrite "
                f"(checkpoints: {prepared.work})",
            )
        manifest = _manifest(
            prepared,
            outcome,
            loop,
            data_info,
            train_set,
            built.device.split(":")[0],
            built.dtype,
            settings,
            wall_time_s=built.setup_s + outcome.state.loop_wall_s,
        )
        path = _publish(built.model, prepared, manifest, settings)
        store.finish(loop.run_id, outcome.status, summary=manifest["results"])
    finally:
        store.close()
    if not prepared.request.keep_checkpoints:
        shutil.rmtree(prepared.work, ignore_errors=True)
    return TrainResult(name, path, outcome.status, manifest)


def _mean_tail(values: list[float], n: int = 10) -> float | None:
    tail = values[-n:]
    return sum(tail) / len(tail) if tail else None


def _manifest(
    prepared: Prepared,
    outcome: Any,
    loop: Any,
    data_info: dict[str, Any],
    train_set: EncodedSet,
    device: str,
    dtype: Any,
    settings: Settings,
    wall_time_s: float,
) -> dict[str, Any]:
    import torch

    from assistant import __version__

    state = outcome.state
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    data = dict(
        data_info,
        truncated=train_set.truncated,
        dropped=train_set.dropped,
        train_tokens=train_set.n_tokens,
        report=prepared.data.report,
        data_manifest=prepared.data.manifest,
    )
    results = {
        "status": outcome.status,
        "steps": state.step,
        "total_steps": loop.total_steps,
        "epochs": round(state.step / loop.steps_per_epoch, 3),
        "train_loss": _mean_tail(state.train_losses),
        "last_train_loss": state.train_losses[-1] if state.train_losses else None,
        "first_train_loss": state.train_losses[0] if state.train_losses else None,
        "val_loss": state.best_val,
        "best_step": state.best_step,
        "last_val_loss": state.val_losses[-1][1] if state.val_losses else None,
        "first_val_loss": state.val_losses[0][1] if state.val_losses else None,
        "tokens_seen": state.tokens_seen,
        "tokens_per_s": state.tokens_seen / state.elapsed_s if state.elapsed_s else None,
        "train_time_s": state.elapsed_s,
        "monitor": {"verdict": state.verdict, "message": state.message},
    }
    return {
        "name": prepared.request.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ladder_version": __version__,
        "mode": prepared.config.mode,
        "base_model": {
            "ref": prepared.base_ref,
            "path": str(prepared.base_dir),
            **adapters.base_model_identity(prepared.base_dir),
        },
        "data": data,
        "hyperparameters": prepared.config.to_dict(),
        "peft": _method_info(prepared.config, loop.model),
        "results": results,
        "wall_time_s": wall_time_s,
        "device": device_name,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": settings.threads,
        "run_id": loop.run_id,
        "evaluations": [],
    }


def _method_info(config: TrainConfig, model: Any) -> dict[str, Any]:
    """What the run trained (``--peft``) and how many of the model's weights that was."""
    from finetune.train.methods import method_details

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"method": config.peft, **method_details(config, model), "trainable_parameters": trainable,
            "total_parameters": total}  # fmt: skip


def _publish(model: Any, prepared: Prepared, manifest: dict[str, Any], settings: Settings) -> Path:
    """Write the adapter folder: a PEFT folder, or for ``--peft full`` a whole transformers
    model (weights, config with the KV cache back on, tokenizer) that loads in place of the base."""
    name = prepared.request.name
    tmp = settings.adapters_dir / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if prepared.config.peft == "full":
        from transformers import AutoTokenizer

        model.config.use_cache = True  # training turned it off; generation needs it
        model.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(prepared.base_dir).save_pretrained(tmp)
    else:
        model.save_pretrained(tmp)
    adapters.write_manifest(tmp, manifest)
    return adapters.publish(tmp, name, settings)
