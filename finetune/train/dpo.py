"""DPO on preference pairs with trl, as a LoRA adapter registered like the SFT ones.

``train_dpo(DPORequest(base, pairs, name, DPOSettings(beta=0.1)), settings)`` checks the name,
the base model and every pair before anything is written, trains LoRA layers with trl's
``DPOTrainer`` and publishes ``adapters/<name>/`` with a manifest (``method: dpo``, ``beta``,
the pairs' SHA-256, the losses, and the mean chosen-minus-rejected log-prob margin before and
after training). The reference model is the base itself: with a ``peft_config``, trl computes
the reference log-probs with the adapter disabled, so no second copy of the model is loaded.

The pairs usually come from end users' feedback (``ladder feedback promote --to pairs``) and
are read by ``finetune.data.preference``, which drops every pair that repeats an evaluation
question (the leakage check of every path into training, ``assistant.leakage``).
Conversational pairs are rendered with the model's chat template (``finetune.train.data.render``:
the same text the ``hf_local`` backend gives the model), so DPO teaches the turn the model will
actually produce.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.backends.hf.warnings import renamed_property_warnings_off
from assistant.errors import ConfigError
from assistant.progress import NullProgress, Progress
from assistant.settings import Settings
from finetune import adapters
from finetune.data.preference import Pair, checked_pairs
from finetune.store import FAILED, TrainingStore
from finetune.train.config import lora_config
from finetune.train.data import render
from finetune.train.run import TrainResult

if TYPE_CHECKING:
    from assistant.leakage import SuiteQuestionReader


@dataclass
class DPOSettings:
    beta: float = 0.1  # how far the policy may move from the reference: smaller = further
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0  # trl disables dropout for DPO; LoRA dropout would make the log-probs noisy
    target_modules: str = "all-linear"
    learning_rate: float = 5e-5
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 1024
    seed: int = 0
    min_pairs: int = 10
    loss_type: str = "sigmoid"  # trl's loss_type: sigmoid is the DPO paper's loss

    def __post_init__(self) -> None:
        for name in (
            "beta",
            "learning_rate",
            "epochs",
            "rank",
            "alpha",
            "batch_size",
            "grad_accum",
            "max_length",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"max_steps must be > 0, got {self.max_steps}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.min_pairs < 1:
            raise ConfigError(f"min_pairs must be >= 1, got {self.min_pairs}")


@dataclass
class DPORequest:
    base: str
    pairs: Path
    name: str
    config: DPOSettings = field(default_factory=DPOSettings)
    overwrite: bool = False
    suites: tuple[Path, ...] = ()  # evaluation suites the pairs must not repeat, besides the shipped ones


def _progress_callback(progress: Progress, store: TrainingStore, run_id: str, total: int) -> Any:
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" not in logs:
                return
            values = {
                "train_loss": float(logs["loss"]),
                "lr": float(logs.get("learning_rate", 0.0)),
                "reward_margin": float(logs.get("rewards/margins", 0.0)),
                "reward_accuracy": float(logs.get("rewards/accuracies", 0.0)),
            }
            store.log_step(run_id, int(state.global_step), values)
            on_metrics = getattr(progress, "metrics", None)
            if callable(on_metrics):
                on_metrics(int(state.global_step), total, {**values, "tokens_per_s": 0.0})
            progress.advance(1)

    return Report()


def train_dpo(
    request: DPORequest, settings: Settings, progress: Progress | None = None, *, suites: SuiteQuestionReader
) -> TrainResult:
    """Check, train, publish. Writes nothing until the request has passed every check. Pairs
    that repeat a question of an evaluation suite (the shipped ones and ``request.suites``,
    read by ``suites``: ``evaluation.suites.source.SuiteFiles()``) are dropped and listed in
    the manifest's ``data.leaks``; when every pair leaks, nothing is trained."""
    import torch

    progress = progress or NullProgress()
    cfg, name = request.config, adapters.check_name(request.name)
    if adapters.exists(name, settings) and not request.overwrite:
        raise adapters.AdapterExists(
            f"an adapter named {name!r} exists", hint="choose another --name, or pass --overwrite"
        )
    base_ref, base_dir = adapters.resolve_base(request.base, settings)
    checked = checked_pairs(request.pairs, cfg.min_pairs, suites, request.suites)
    pairs, pairs_hash = checked.pairs, checked.pairs_hash

    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    progress.start(f"loading {base_ref}")
    model, tokenizer, device = _load(base_dir, settings)
    rows = [render_pair(tokenizer, pair) for pair in pairs]
    margins_before = preference_margins(model, tokenizer, rows)

    work = adapters.work_dir(name, settings)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = -(-len(rows) // (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps or max(1, round(cfg.epochs * steps_per_epoch))
    data_info = {"path": str(request.pairs), "pairs_hash": pairs_hash, "pairs": len(rows),
                 "pairs_in_file": checked.in_file, "leaks": checked.leaks,
                 "leakage_checked": checked.suites}  # fmt: skip
    store = TrainingStore(settings.db_path)
    run_id = store.create_run(name, base_ref, "dpo", total, asdict(cfg), data_info, pid=os.getpid())
    try:
        progress.start("DPO", total=total, unit="steps")
        trainer = _trainer(model, tokenizer, rows, cfg, work, device, total)
        trainer.add_callback(_progress_callback(progress, store, run_id, total))
        _quiet(trainer)
        trainer.train()
        policy = trainer.model
        margins_after = preference_margins(policy, tokenizer, rows)
        history = [entry for entry in trainer.state.log_history if "loss" in entry]
        results = {
            "status": "complete",
            "steps": int(trainer.state.global_step),
            "total_steps": total,
            "first_train_loss": history[0]["loss"] if history else None,
            "train_loss": history[-1]["loss"] if history else None,
            "reward_accuracy": history[-1].get("rewards/accuracies") if history else None,
            "reward_margin": history[-1].get("rewards/margins") if history else None,
            "margin_before": sum(margins_before) / len(margins_before),
            "margin_after": sum(margins_after) / len(margins_after),
            "val_loss": None,
        }
        manifest = _manifest(request, base_ref, base_dir, data_info, results, device, settings,
                             time.perf_counter() - started, run_id)  # fmt: skip
        tmp = settings.adapters_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        policy.save_pretrained(tmp)
        adapters.write_manifest(tmp, manifest)
        path = adapters.publish(tmp, name, settings)
        store.finish(run_id, "complete", summary=results)
    except BaseException as exc:
        store.finish(run_id, FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(name, path, "complete", manifest)


def render_pair(tokenizer: Any, pair: Pair) -> dict[str, str]:
    """trl's standard format: the prompt as the model sees it, each completion as the rest."""
    prompt = render(tokenizer, list(pair.prompt), add_generation_prompt=True)
    out = {"prompt": prompt}
    for key, text in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        full = render(tokenizer, [*pair.prompt, {"role": "assistant", "content": text}], False)
        out[key] = full[len(prompt) :] if full.startswith(prompt) else text
        eos = tokenizer.eos_token
        if eos and not out[key].endswith(eos):
            out[key] += eos  # as trl adds it: the reply ends where the model stops
    return out


def preference_margins(model: Any, tokenizer: Any, rows: list[dict[str, str]]) -> list[float]:
    """log p(chosen | prompt) - log p(rejected | prompt) per pair, under ``model`` as it is."""
    import torch

    def logprob(prompt: str, completion: str) -> float:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + completion_ids], device=model.device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        targets = ids[0, 1:]
        start = len(prompt_ids) - 1
        picked = logprobs[start:].gather(1, targets[start:].unsqueeze(1))
        return float(picked.sum())

    was_training = model.training
    model.eval()
    try:
        return [logprob(r["prompt"], r["chosen"]) - logprob(r["prompt"], r["rejected"]) for r in rows]
    finally:
        model.train(was_training)


def _quiet(trainer: Any) -> None:
    """No printing: transformers prints every log dict to stdout when its progress bar is off,
    which would corrupt ``--json`` output. Our callback reports progress instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _load(base_dir: Path, settings: Settings) -> tuple[Any, Any, str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from assistant.backends.hf.device import pick_device
    from assistant.errors import ModelNotFoundError

    hf_logging.disable_progress_bar()
    device = pick_device(settings.device)
    dtype = torch.bfloat16 if device == "cuda" or settings.dtype == "bfloat16" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
        model = model.to(device)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"could not load a causal LM from {base_dir}: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, device


def _config(config_class: Any, cfg: DPOSettings, work: Path, device: str, total: int) -> Any:
    return config_class(
        output_dir=str(work),
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        learning_rate=cfg.learning_rate,
        max_steps=total,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length,
        seed=cfg.seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        gradient_checkpointing=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def _trainer(model: Any, tokenizer: Any, rows: list[dict[str, str]], cfg: DPOSettings, work: Path,
             device: str, total: int) -> Any:  # fmt: skip
    import importlib

    from trl import DPOConfig, DPOTrainer

    # Hugging Face `datasets`, by name: linters and mypy take the repository's datasets/ folder
    # (project data, never a package) for it.
    hf_datasets: Any = importlib.import_module("datasets")
    hf_datasets.disable_progress_bars()
    dataset_class = hf_datasets.Dataset

    with renamed_property_warnings_off():
        args = _config(DPOConfig, cfg, work, device, total)
    lora = lora_config(cfg.rank, cfg.alpha, cfg.dropout, cfg.target_modules)
    with renamed_property_warnings_off():
        return DPOTrainer(
            model=model,
            ref_model=None,  # with LoRA, the reference is the base with the adapter disabled
            args=args,
            train_dataset=dataset_class.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora,
        )


def _manifest(request: DPORequest, base_ref: str, base_dir: Path, data_info: dict[str, Any],
              results: dict[str, Any], device: str, settings: Settings, wall_time_s: float,
              run_id: str) -> dict[str, Any]:  # fmt: skip
    from assistant import __version__

    return {
        "name": request.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ladder_version": __version__,
        "mode": "dpo",
        "method": "dpo",
        "beta": request.config.beta,
        "base_model": {"ref": base_ref, "path": str(base_dir), **adapters.base_model_identity(base_dir)},
        "data": {**data_info, "data_hash": data_info["pairs_hash"]},
        "hyperparameters": asdict(request.config),
        "results": results,
        "wall_time_s": wall_time_s,
        "device": device,
        "dtype": "bfloat16" if device == "cuda" or settings.dtype == "bfloat16" else "float32",
        "threads": settings.threads,
        "run_id": run_id,
        "evaluations": [],
    }
