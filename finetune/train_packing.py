"""Packed micro-batches: no padding, and a prefix that the examples share computed once.

Chat examples of one task often begin with the same tokens: the template's header, a system
prompt, a long instruction (the support-ticket set shares 64 of its ~100 tokens per example).
Those tokens are only context (no example learns from them), and a causal model's hidden
states for them do not depend on what follows. So a row holds the shared prefix once, then
each example's own tokens; a 4D attention mask lets every example see the prefix and itself,
causally, and nothing of its neighbours. Position ids continue from the prefix, as if each
example were alone. The loss and its gradients are the ones of the separate examples (the
gradient of the prefix is the sum of its uses), at the cost of computing the prefix once per
row. With LoRA dropout > 0 the prefix's dropout noise is shared by the examples of a row
instead of drawn for each: the same in expectation.

Without a prefix worth sharing (fewer than ``MIN_SHARED_PREFIX`` tokens, or raw text), rows
hold whole examples, first-fit by decreasing length, no longer than the longest example:
attention's cost grows with the square of a row, so one long row for the whole micro-batch
would lose what packing saves. Padding that ends a row is a block of its own (it attends to
itself only, so no softmax runs over nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from finetune.train_data import Encoded

IGNORE = -100
MIN_SHARED_PREFIX = 16  # tokens; a shorter shared prefix is not worth a row of its own
SHARED_ROW_BUDGET = 384  # extra tokens a row with a shared prefix may hold beyond the longest example


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor  # same shape as input_ids, IGNORE where nothing is learnt
    n_tokens: int  # real tokens of the examples (a shared prefix counts once per example)
    n_targets: int

    def to(self, device: str) -> Batch:
        if device == "cpu":
            return self
        inputs = {k: v.to(device) for k, v in self.inputs.items()}
        return Batch(inputs, self.targets.to(device), self.n_tokens, self.n_targets)


def shared_prefix(examples: Sequence[Encoded]) -> int:
    """How many leading tokens every example has in common and learns nothing from (each
    keeps at least one token of its own); 0 when that is fewer than ``MIN_SHARED_PREFIX``."""
    if len(examples) < 2:
        return 0
    first = examples[0].input_ids
    limit = min(len(e) for e in examples) - 1
    count = 0
    while count < limit and all(e.input_ids[count] == first[count] and e.targets[count] == IGNORE
                                for e in examples):  # fmt: skip
        count += 1
    return count if count >= MIN_SHARED_PREFIX else 0


def pack_rows(lengths: Sequence[int], capacity: int | None = None) -> list[list[int]]:
    """First-fit decreasing: indices grouped into rows of at most ``capacity`` (default: the
    longest) tokens."""
    capacity = max(lengths) if capacity is None else max(capacity, max(lengths))
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


def _causal(n: int) -> torch.Tensor:
    return torch.ones((n, n), dtype=torch.bool).tril()


def packed_batch(examples: Sequence[Encoded], pad_id: int) -> Batch:
    prefix = shared_prefix(examples)
    own = [len(e) - prefix for e in examples]  # each example's tokens after the prefix
    rows = pack_rows(own, max(own) + SHARED_ROW_BUDGET if prefix else None)
    width = max(prefix + sum(own[i] for i in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), 1, width, width), dtype=torch.bool)
    head = torch.tensor(examples[0].input_ids[:prefix], dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, :prefix] = head
        positions[r, :prefix] = torch.arange(prefix)
        mask[r, 0, :prefix, :prefix] = _causal(prefix)
        start = prefix
        for index in row:
            example, end = examples[index], start + own[index]
            input_ids[r, start:end] = torch.tensor(example.input_ids[prefix:])
            targets[r, start:end] = torch.tensor(example.targets[prefix:])
            positions[r, start:end] = torch.arange(prefix, len(example))
            mask[r, 0, start:end, :prefix] = True
            mask[r, 0, start:end, start:end] = _causal(end - start)
            start = end
        positions[r, start:] = torch.arange(width - start)
        mask[r, 0, start:, start:] = _causal(width - start)
    inputs = {"input_ids": input_ids, "position_ids": positions, "attention_mask": mask}
    n_tokens = sum(len(e) for e in examples)
    return Batch(inputs, targets, n_tokens, sum(e.n_targets for e in examples))
