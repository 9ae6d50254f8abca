"""The training loop: LoRA on a causal LM, AdamW, warmup + cosine, gradient accumulation,
live metrics, the loss-curve monitor, early stopping and checkpoints.

A hand-written loop rather than ``transformers.Trainer``: exact resume (every random state
and the data position), metrics written to SQLite as they happen, and a stop decided by our
monitor are each a few lines here and a fight with callbacks there.

The loss of an optimizer step is the summed cross-entropy of its target tokens over all
its micro-batches, divided by the number of those targets: gradient accumulation gives the
same step as one big batch would. With several processes (``distributed``) the step's
examples are shared out among them and the same holds: N processes take the step one would.
Whatever the method (LoRA, prompt tuning, a layer subset, every weight), what is trained is
what has ``requires_grad``.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from assistant.progress import Progress
from finetune.store import DIVERGED, EARLY_STOPPED, TrainingStore
from finetune.train import monitor
from finetune.train.batches import collate, epoch_batches, evaluate_loss, evaluate_loss_sum, loss_sum
from finetune.train.checkpoint import (
    LoopState,
    load_trainable,
    restore_checkpoint,
    rng_state,
    save_checkpoint,
    trainable_state,
)
from finetune.train.config import TrainConfig, lr_factor
from finetune.train.data import Encoded
from finetune.train.distributed import Dist, shard_group


def pad_id_of(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad if pad is not None else 0)


@dataclass
class LoopOutcome:
    state: LoopState
    status: str  # complete | early_stopped | diverged
    best: dict[str, torch.Tensor] | None
    diagnosis: monitor.Diagnosis | None


@dataclass
class Loop:
    model: Any
    config: TrainConfig
    train: Sequence[Encoded]
    val: Sequence[Encoded]
    pad_id: int
    device: str
    work: Path
    run_id: str
    store: TrainingStore | None  # None in every process but the main one
    progress: Progress
    on_metrics: Callable[[int, int, dict[str, float]], None] | None = None
    dist: Dist = field(default_factory=Dist)
    train_model: Any = None  # what the forward goes through: the model, or its DDP wrapper
    total_steps: int = 0
    steps_per_epoch: int = 1
    optimizer: Any = None
    scheduler: Any = None
    best: dict[str, torch.Tensor] | None = None
    watch: monitor.LossWatch = field(default_factory=monitor.LossWatch)
    overruled_at: int | None = None  # val checks seen when a "diverging" verdict was last overruled
    lengths: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.config
        self.lengths = [len(e) for e in self.train]
        n_batches = math.ceil(len(self.train) / cfg.batch_size)
        self.total_steps = cfg.total_steps(n_batches)
        self.steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
        warmup = cfg.warmup_steps(self.total_steps)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        total = self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, total, warmup)
        )
        self.train_model, self.optimizer = self.dist.prepare(self.model, self.optimizer)

    # ---- state ---------------------------------------------------------------------------------
    def fresh_state(self) -> LoopState:
        random.seed(self.config.seed)
        if self.dist.rank:  # dropout masks of their own in the other processes
            torch.manual_seed(self.config.seed + self.dist.rank)
        return LoopState()

    def restore(self, checkpoint: Path) -> LoopState:
        if self.dist.rank:  # its own generators when the checkpoint has none for this process
            torch.manual_seed(self.config.seed + self.dist.rank)
        restored = restore_checkpoint(
            checkpoint, self.model, self.optimizer, self.scheduler, self.device, self.dist.rank
        )
        self.best = restored.best
        state = restored.state
        self.watch.losses = list(state.train_losses)
        self.watch.last = (
            monitor.diagnose(self.watch.losses, self.watch.config) if state.train_losses else None
        )
        return state

    def checkpoint(self, state: LoopState) -> None:
        """Every process calls this at the same step; the main one writes."""
        rngs = self.dist.gather(rng_state()) if self.dist.active else None
        if self.dist.is_main:
            save_checkpoint(self.work, state, self.model, self.optimizer, self.scheduler, self.best, rngs)

    # ---- one step ------------------------------------------------------------------------------
    def _step(self, group: list[list[int]]) -> tuple[float, int, float]:
        """Forward/backward over this process's micro-batches of the group, then one optimizer
        step. Returns (loss, real tokens, gradient norm) of the whole group, the same in every
        process; NaN loss skips the update."""
        cfg = self.config
        world = self.dist.world_size
        n_targets = sum(self.train[i].n_targets for micro in group for i in micro)
        micros, real = shard_group(group, self.lengths, cfg.batch_size, self.dist.rank, world)
        # DDP averages the processes' gradients: times ``world``, their mean is the global sum's
        scale = world if real else 0
        loss_total, tokens = 0.0, 0
        for k, micro in enumerate(micros):
            batch = collate([self.train[i] for i in micro], cfg.batching, self.pad_id).to(self.device)
            last = k == len(micros) - 1  # its backward all-reduces the accumulated gradients
            with contextlib.nullcontext() if last else self.dist.no_sync(self.train_model):
                loss = loss_sum(self.model, batch, self.train_model) * scale / n_targets
                loss.backward()
            loss_total += float(loss.detach())
            tokens += batch.n_tokens if real else 0
        if self.dist.active:
            summed, tokens_f = self.dist.sum([loss_total, tokens])
            loss_total, tokens = summed / world, int(tokens_f)
        if not math.isfinite(loss_total):
            self.optimizer.zero_grad(set_to_none=True)
            return loss_total, tokens, float("nan")
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_total, tokens, grad_norm

    def _evaluate(self, state: LoopState, metrics: dict[str, float]) -> bool:
        """Val loss now; keep the best weights; True when early stopping says stop."""
        cfg = self.config
        if self.dist.active:  # each process its share of the batches; summed over all
            total, count = evaluate_loss_sum(
                self.model, self.val, cfg.batch_size, cfg.batching, self.pad_id, self.device,
                self.dist.rank, self.dist.world_size,
            )  # fmt: skip
            total, count_f = self.dist.sum([total, count])
            val = total / max(1, int(count_f))
        else:
            val = evaluate_loss(self.model, self.val, cfg.batch_size, cfg.batching, self.pad_id, self.device)
        state.val_losses.append((state.step, val))
        metrics["val_loss"] = val
        verdict = monitor.early_stop([v for _, v in state.val_losses], cfg.patience, cfg.min_delta)
        if verdict.best_index == len(state.val_losses) - 1:
            self.best = trainable_state(self.model)
            state.best_val, state.best_step = val, state.step
        if verdict.stop:
            self.progress.note(
                f"early stop at step {state.step}: val loss has not improved for {verdict.since_best} "
                f"evaluations (best {state.best_val:.4f} at step {state.best_step})"
            )
        return verdict.stop

    def _watch(self, state: LoopState, loss: float) -> monitor.Diagnosis:
        """The monitor's verdict with this step's loss; a new spike or a worse verdict is shown."""
        change = self.watch.add(loss)
        if change is not None and change.verdict in (monitor.SPIKES, monitor.DIVERGING):
            self.progress.note(f"{change.verdict}: {change.message}")
        diagnosis = self.watch.last
        assert diagnosis is not None
        state.verdict, state.message = diagnosis.verdict, diagnosis.message
        return diagnosis

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, state: LoopState) -> LoopOutcome:
        cfg = self.config
        self.model.train()
        eval_every = cfg.eval_interval(self.total_steps)
        lengths = self.lengths
        status, diagnosis = "complete", None
        if self.val and state.step == 0 and not state.val_losses:  # the starting point of the val curve
            initial: dict[str, float] = {}
            self._evaluate(state, initial)
            if self.store is not None:
                self.store.log_step(self.run_id, 0, initial)
        self.progress.start("training", total=self.total_steps, unit="steps")
        self.progress.advance(state.step)
        wall_start, wall_before = time.perf_counter(), state.loop_wall_s
        while state.step < self.total_steps and status == "complete":
            batches = epoch_batches(lengths, cfg.batch_size, cfg.batching, cfg.seed, state.epoch)
            groups = [batches[i : i + cfg.grad_accum] for i in range(0, len(batches), cfg.grad_accum)]
            while state.next_group < len(groups) and state.step < self.total_steps:
                lr = float(self.scheduler.get_last_lr()[0])
                started = time.perf_counter()
                loss, tokens, grad_norm = self._step(groups[state.next_group])
                seconds = time.perf_counter() - started
                state.step += 1
                state.next_group += 1
                state.train_losses.append(loss)
                state.tokens_seen += tokens
                state.elapsed_s += seconds
                metrics = {
                    "train_loss": loss,
                    "lr": lr,
                    "tokens_per_s": tokens / max(seconds, 1e-9),
                    "grad_norm": grad_norm,
                    "epoch": state.epoch + state.next_group / len(groups),
                }
                diagnosis = self._watch(state, loss)
                vals = [v for _, v in state.val_losses]
                overruled = monitor.overruled_by_val(diagnosis, state.train_losses, vals)
                if overruled:
                    state.message = (
                        f"val loss is still improving ({vals[-1]:.4g}, the best so far): carrying on "
                        f"until the next val check, though {diagnosis.message}"
                    )
                    if self.overruled_at != len(vals):  # said once per val check
                        self.overruled_at = len(vals)
                        self.progress.note(state.message)
                if diagnosis.stop and not overruled:
                    status = DIVERGED
                elif self.val and (state.step % eval_every == 0 or state.step == self.total_steps):
                    status = EARLY_STOPPED if self._evaluate(state, metrics) else status
                if self.store is not None:
                    self.store.log_step(self.run_id, state.step, metrics, state.verdict, state.message)
                state.loop_wall_s = wall_before + time.perf_counter() - wall_start
                if self.on_metrics is not None:
                    self.on_metrics(state.step, self.total_steps, metrics)
                self.progress.advance(1)
                if status != "complete":
                    break
                if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                    self.checkpoint(state)
            if state.next_group >= len(groups):
                state.epoch, state.next_group = state.epoch + 1, 0
        if self.best is not None:
            load_trainable(self.model, self.best)
        return LoopOutcome(state, status, self.best, diagnosis)
