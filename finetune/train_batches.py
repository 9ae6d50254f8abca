"""Micro-batches: the order of examples in each epoch, collation, and the loss of a batch.

The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run finds its place
from two numbers (the epoch and the next micro-batch) and sees the very same batches.

Padding is where a naive trainer loses time on short, uneven examples (a classification
prompt of 40 tokens padded to 200). ``packed`` removes most of it: the micro-batch's
examples are packed into rows as long as its longest example, and position ids restart at
each example, which transformers turns into a block-diagonal causal mask, so no example
attends to another. The loss is computed only where a target exists: ``logits_to_keep``
projects just those positions onto the vocabulary, which for chat data (a short reply after
a long prompt) skips most of the LM head's work.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from finetune.train_data import Encoded

IGNORE = -100
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


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor  # same shape as input_ids, IGNORE where nothing is learnt
    n_tokens: int  # real (non-pad) tokens
    n_targets: int

    def to(self, device: str) -> Batch:
        if device == "cpu":
            return self
        inputs = {k: v.to(device) for k, v in self.inputs.items()}
        return Batch(inputs, self.targets.to(device), self.n_tokens, self.n_targets)


def collate(examples: Sequence[Encoded], batching: str, pad_id: int) -> Batch:
    n_tokens = sum(len(e) for e in examples)
    n_targets = sum(e.n_targets for e in examples)
    if batching == "packed":
        return _packed(examples, pad_id, n_tokens, n_targets)
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


def pack_rows(lengths: Sequence[int]) -> list[list[int]]:
    """First-fit decreasing: indices grouped into rows no longer than the longest example."""
    capacity = max(lengths)
    rows: list[list[int]] = []
    free: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, space in enumerate(free) if lengths[index] <= space), None)
        if row is None:
            rows.append([index])
            free.append(capacity - lengths[index])
        else:
            rows[row].append(index)
            free[row] -= lengths[index]
    return rows


def _packed(examples: Sequence[Encoded], pad_id: int, n_tokens: int, n_targets: int) -> Batch:
    """Rows of whole examples, each row as long as the longest example. Position ids restart
    at every example (and at the padding that fills a row's end, a block of its own), which
    transformers turns into a block-diagonal causal mask. Rows no longer than one example keep
    attention's cost what it is unpacked: one long row would make it grow with the square of
    the whole micro-batch."""
    rows = pack_rows([len(e) for e in examples])
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for index in row:
            example = examples[index]
            end = start + len(example)
            input_ids[r, start:end] = torch.tensor(example.input_ids)
            targets[r, start:end] = torch.tensor(example.targets)
            positions[r, start:end] = torch.arange(len(example))
            start = end
        positions[r, start:] = torch.arange(width - start)
    inputs = {"input_ids": input_ids, "position_ids": positions}
    return Batch(inputs, targets, n_tokens, n_targets)


def loss_sum(model: Any, batch: Batch) -> torch.Tensor:
    """Summed cross-entropy over the batch's targets (divide by the step's target count)."""
    keep = batch.targets != IGNORE
    out = model(**batch.inputs, logits_to_keep=keep, use_cache=False)
    logits = out.logits
    if logits.dim() == 3:  # a model class that ignores a boolean logits_to_keep
        logits = logits[keep]
    return F.cross_entropy(logits.float(), batch.targets[keep], reduction="sum")


@torch.no_grad()
def evaluate_loss(
    model: Any, examples: Sequence[Encoded], batch_size: int, batching: str, pad_id: int, device: str
) -> float:
    """Token-weighted mean loss over ``examples`` (the validation loss)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    for start in range(0, len(order), batch_size):
        batch = collate([examples[i] for i in order[start : start + batch_size]], batching, pad_id).to(device)
        total += float(loss_sum(model, batch))
        count += batch.n_targets
    model.train(was_training)
    return total / max(1, count)
