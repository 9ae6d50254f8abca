"""Micro-batches: the order of examples in each epoch, collation, and the loss of a batch.

The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run finds its place
from two numbers (the epoch and the next micro-batch) and sees the very same batches.

``packed`` batching (``train_packing``) leaves out padding and computes the leading context
that a micro-batch's examples have in common (a prefix tree) once; ``grouped`` pads batches
of similar lengths; ``padded`` pads random batches, as most trainers do. The loss is
computed only where a target exists: ``logits_to_keep`` projects just those positions onto
the vocabulary, which for chat data (a short reply after a long prompt) skips most of the
LM head's work.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from finetune.train.data import Encoded
from finetune.train.packing import IGNORE, Batch, packed_batch

__all__ = ["IGNORE", "Batch", "collate", "epoch_batches", "evaluate_loss", "evaluate_loss_sum", "loss_sum"]

GROUP_WINDOW = 64  # micro-batches' worth of examples sorted together by ``grouped`` batching


def epoch_batches(
    lengths: Sequence[int], batch_size: int, batching: str, seed: int, epoch: int
) -> list[list[int]]:
    """Indices of the examples in each micro-batch of one epoch, in order."""
    rng = random.Random(f"ladder-train:{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if batching != "grouped":
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * GROUP_WINDOW
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)  # similar lengths within a batch, random order across batches
    return batches


def collate(examples: Sequence[Encoded], batching: str, pad_id: int) -> Batch:
    n_tokens = sum(len(e) for e in examples)
    n_targets = sum(e.n_targets for e in examples)
    if batching == "packed":
        return packed_batch(examples, pad_id)
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    target_rows = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(examples):
        input_ids[row, : len(example)] = torch.tensor(example.input_ids)
        attention[row, : len(example)] = 1
        target_rows[row, : len(example)] = torch.tensor(example.targets)
    inputs = {"input_ids": input_ids, "attention_mask": attention}
    return Batch(inputs, target_rows, n_tokens, n_targets)


def loss_sum(model: Any, batch: Batch, forward: Any = None) -> torch.Tensor:
    """Summed cross-entropy over the batch's targets (divide by the step's target count).

    ``forward``: what to call instead of ``model`` (its DDP wrapper), ``model`` itself by default."""
    keep = batch.targets != IGNORE
    inputs = batch.inputs
    mask = inputs.get("attention_mask")
    if (
        mask is not None
        and mask.dim() == 4
        and getattr(model.config, "_attn_implementation", "sdpa") == "eager"
    ):
        # eager attention adds the mask to the scores: allowed 0, masked the dtype's minimum
        dtype = next(model.parameters()).dtype
        additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        inputs = {**inputs, "attention_mask": additive.masked_fill(~mask, torch.finfo(dtype).min)}
    out = (forward or model)(**inputs, logits_to_keep=keep, use_cache=False)
    logits = out.logits
    if logits.dim() == 3:  # a model class that ignores a boolean logits_to_keep
        logits = logits[keep]
    return F.cross_entropy(logits.float(), batch.targets[keep], reduction="sum")


@torch.no_grad()
def evaluate_loss(
    model: Any, examples: Sequence[Encoded], batch_size: int, batching: str, pad_id: int, device: str
) -> float:
    """Token-weighted mean loss over ``examples`` (the validation loss)."""
    total, count = evaluate_loss_sum(model, examples, batch_size, batching, pad_id, device)
    return total / max(1, count)


@torch.no_grad()
def evaluate_loss_sum(
    model: Any,
    examples: Sequence[Encoded],
    batch_size: int,
    batching: str,
    pad_id: int,
    device: str,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[float, int]:
    """Summed loss and target count over this process's share of ``examples`` (batches of
    similar lengths, dealt out in turn to the ``world_size`` processes)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    for start in range(rank * batch_size, len(order), batch_size * world_size):
        batch = collate([examples[i] for i in order[start : start + batch_size]], batching, pad_id).to(device)
        total += float(loss_sum(model, batch))
        count += batch.n_targets
    model.train(was_training)
    return total, count
