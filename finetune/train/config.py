"""Hyperparameters of a training run: one dataclass that validates itself.

The same values go into the adapter's manifest, the run store and a checkpoint's
``run.json``, so a resumed run trains with exactly what the interrupted one used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from assistant.errors import ConfigError

log = logging.getLogger(__name__)

MODES = ("sft", "cpt")
# packed: a micro-batch's examples share rows without padding; the context they have in common
#   (a prefix tree) is computed once, and a 4D mask keeps each example to its own tokens
#   (train_packing).
# grouped: examples of similar length share a padded micro-batch (little padding).
# padded: random micro-batches padded to their longest example (what most trainers do).
BATCHING = ("packed", "grouped", "padded")
# What is trained (finetune/train/methods.py): LoRA on every linear layer (the default), additive
# prompt tuning (virtual tokens before the input), LoRA on the last layers only, or every weight.
PEFT_METHODS = ("lora", "prompt-tuning", "last-layers", "full")
# The peak learning rate `ladder finetune train --peft M` uses when --lr is not given: prompt
# tuning moves a few embeddings and needs a large rate (Lester et al. 2021); every weight of the
# model moves at a rate ten times smaller than LoRA's (benchmarks/methods.py).
DEFAULT_LEARNING_RATE = {"lora": 2e-4, "last-layers": 2e-4, "prompt-tuning": 3e-2, "full": 5e-5}
# Prompt tuning puts virtual tokens before every example: a packed row's shared prefix tree, its
# 4D mask and its position ids have no place for them, so it trains on grouped batches instead.
PACKED_REFUSED = ("prompt-tuning",)


@dataclass
class TrainConfig:
    mode: str = "sft"  # sft: chat data, loss on assistant tokens; cpt: raw text, loss on every token
    peft: str = "lora"  # lora | prompt-tuning | last-layers | full (PEFT_METHODS)
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "all-linear"  # or comma-separated module names: q_proj,v_proj
    # last-layers: LoRA on the model's last N decoder layers; None = a quarter of them (at least 1)
    last_layers: int | None = None
    # prompt-tuning: virtual tokens before every input, initialised from the embeddings of a
    # task-neutral instruction (methods.PROMPT_INIT_TEXT), not at random
    num_virtual_tokens: int = 20
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.05  # of the total steps; the rest follows a cosine to 0
    epochs: float | None = None  # default: 3 for sft, 1 for cpt (ignored when max_steps is set)
    max_steps: int | None = None
    batch_size: int = 8  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_seq_len: int = 1024
    batching: str = "packed"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50  # optimizer steps; 0 = only at the end
    eval_every: int | None = None  # optimizer steps; default: about 10 evaluations per run
    patience: int = 3  # evaluations without improvement before stopping early; 0 = never
    min_delta: float = 0.0  # an improvement of val loss smaller than this does not count
    min_examples: int = 50
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.peft not in PEFT_METHODS:
            raise ConfigError(f"peft must be one of {', '.join(PEFT_METHODS)}, got {self.peft!r}")
        if self.batching not in BATCHING:
            raise ConfigError(f"batching must be one of {', '.join(BATCHING)}, got {self.batching!r}")
        if self.peft in PACKED_REFUSED and self.batching == "packed":
            log.warning("--peft %s cannot train on packed batches: using grouped batching", self.peft)
            self.batching = "grouped"
        if self.last_layers is not None and self.last_layers <= 0:
            raise ConfigError(f"last_layers must be > 0, got {self.last_layers}")
        if self.num_virtual_tokens <= 0:
            raise ConfigError(f"num_virtual_tokens must be > 0, got {self.num_virtual_tokens}")
        if self.epochs is None:
            self.epochs = 3.0 if self.mode == "sft" else 1.0
        positive = {
            "rank": self.rank,
            "alpha": self.alpha,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "max_seq_len": self.max_seq_len,
            "max_grad_norm": self.max_grad_norm,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"max_steps must be > 0, got {self.max_steps}")
        if self.eval_every is not None and self.eval_every <= 0:
            raise ConfigError(f"eval_every must be > 0, got {self.eval_every}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in ("weight_decay", "min_delta", "checkpoint_every", "patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.min_examples < 1:
            raise ConfigError(f"min_examples must be >= 1, got {self.min_examples}")
        if not self.target_modules.strip():
            raise ConfigError("target_modules is empty", hint="use all-linear or names like q_proj,v_proj")

    def total_steps(self, micro_batches_per_epoch: int) -> int:
        """Optimizer steps of the run: ``max_steps`` if set, else ``epochs`` worth of steps."""
        if self.max_steps is not None:
            return self.max_steps
        per_epoch = math.ceil(micro_batches_per_epoch / self.grad_accum)
        return max(1, math.ceil(float(self.epochs or 1) * per_epoch))

    def warmup_steps(self, total_steps: int) -> int:
        return math.ceil(self.warmup_ratio * total_steps)  # as transformers rounds a warmup ratio

    def eval_interval(self, total_steps: int) -> int:
        return self.eval_every or max(1, total_steps // 10)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warmup to 1, then a cosine down to 0 at ``total_steps`` (``step`` counts from 0).

    The same curve as transformers' ``get_cosine_schedule_with_warmup``, so a run compares
    one to one with a ``Trainer`` run of the same settings.
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def lora_targets(target_modules: str) -> str | list[str]:
    """What peft's ``LoraConfig(target_modules=...)`` takes: ``all-linear`` or a name list."""
    text = target_modules.strip()
    if text == "all-linear":
        return text
    return [name.strip() for name in text.split(",") if name.strip()]


def lora_config(
    rank: int,
    alpha: int,
    dropout: float,
    target_modules: str,
    layers_to_transform: list[int] | None = None,
) -> Any:
    """The peft ``LoraConfig`` of an SFT, CPT or DPO adapter (bias untouched, causal LM);
    ``layers_to_transform`` limits it to those decoder layers (``--peft last-layers``)."""
    from peft import LoraConfig

    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_targets(target_modules),
        layers_to_transform=layers_to_transform,
        bias="none",
        task_type="CAUSAL_LM",
    )
