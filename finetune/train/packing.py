"""Packed micro-batches: no padding, and the context that examples have in common computed once.

Chat examples often begin with the same tokens: the template's header, a system prompt, a
task's long instruction (the support-ticket set shares 64 of its ~100 tokens per example).
Those tokens are only context (no example learns from them), and a causal model's hidden
states for them depend only on the tokens before them. So each example's *shareable* region,
its leading tokens that it learns nothing from (keeping at least one token of its own), goes
into a prefix tree (trie) whose nodes are (parent, token). A row holds the trie's nodes once,
in depth-first order, then each example's own tokens. A 4D attention mask lets a token see
itself and its ancestors only (its trie path, then its own earlier tokens), nothing of other
branches or other examples, and its position id is its depth: the position it has in its own
example. A micro-batch that mixes tasks thus shares what each group has in common: five
ticket-routing examples their system prompt and instruction, all eight the system prompt.
The loss and its gradients are those of the separate examples (a node's gradient is the sum
of its uses). With LoRA dropout > 0 a node's dropout noise is shared by the examples below it
instead of drawn for each: the same in expectation.

Rows: the whole micro-batch in one row when it fits in the longest example plus
``SHARED_ROW_BUDGET`` tokens; attention's cost grows with the square of a row, so the budget
bounds it for long examples. Otherwise examples go, longest first, to the row where they add
the fewest tokens (their trie nodes that the row lacks, plus their own) and still fit. Where
the trie saves fewer than ``MIN_SHARED`` tokens (raw text, say) rows are no wider than the
longest example (with nothing shared, that is first-fit decreasing). Padding that ends a row
is a block of its own (it attends to itself only, so no softmax runs over nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from finetune.train.data import Encoded

IGNORE = -100
MIN_SHARED = 16  # tokens the trie must save before a row may grow beyond the longest example
SHARED_ROW_BUDGET = 384  # extra tokens a row with shared nodes may hold beyond the longest example


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor  # same shape as input_ids, IGNORE where nothing is learnt
    n_tokens: int  # real tokens of the examples (a shared token counts once per example)
    n_targets: int

    def to(self, device: str) -> Batch:
        if device == "cpu":
            return self
        inputs = {k: v.to(device) for k, v in self.inputs.items()}
        return Batch(inputs, self.targets.to(device), self.n_tokens, self.n_targets)


def shareable(example: Encoded) -> int:
    """How many leading tokens the example learns nothing from, keeping one of its own."""
    count, limit = 0, len(example) - 1
    while count < limit and example.targets[count] == IGNORE:
        count += 1
    return count


def trie_paths(examples: Sequence[Encoded]) -> list[list[int]]:
    """Each example's shareable region as its path of trie nodes (ids in order of first use):
    two examples have the same node where they have the same tokens up to it."""
    nodes: dict[tuple[int, int], int] = {}
    paths = []
    for example in examples:
        node, path = -1, []
        for token in example.input_ids[: shareable(example)]:
            node = nodes.setdefault((node, token), len(nodes))
            path.append(node)
        paths.append(path)
    return paths


def pack_rows(
    lengths: Sequence[int], capacity: int | None = None, paths: Sequence[Sequence[int]] | None = None
) -> list[list[int]]:
    """Indices grouped into rows of at most ``capacity`` (default: the longest) tokens, longest
    first, each into the first row where it adds the fewest tokens. With ``paths`` (the trie
    nodes that begin each example, counted in ``lengths``) a row holds a node once; without
    them this is first-fit decreasing."""
    capacity = max(lengths) if capacity is None else max(capacity, max(lengths))
    rows: list[list[int]] = []
    used: list[int] = []
    held: list[set[int]] = []  # the trie nodes each row holds
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        path = paths[index] if paths is not None else ()
        best, best_cost = -1, 0
        for r in range(len(rows)):
            cost = lengths[index] - sum(1 for node in path if node in held[r])
            if used[r] + cost <= capacity and (best < 0 or cost < best_cost):
                best, best_cost = r, cost
        if best < 0:
            rows.append([index])
            used.append(lengths[index])
            held.append(set(path))
        else:
            rows[best].append(index)
            used[best] += best_cost
            held[best].update(path)
    return rows


@dataclass
class _Row:
    tokens: list[int]
    targets: list[int]
    parents: list[int]  # position of the token each one follows (-1: none)
    depths: list[int]  # = position ids


def _layout(examples: Sequence[Encoded], paths: Sequence[list[int]], row: list[int]) -> _Row:
    """The row's trie nodes depth-first (examples in the order of their shareable tokens: a node
    first appears with the first example below it), then each example's own tokens."""
    row = sorted(row, key=lambda i: examples[i].input_ids[: len(paths[i])])
    out = _Row([], [], [], [])
    at: dict[int, int] = {}  # trie node -> its position in the row
    for index in row:
        parent = -1
        for depth, node in enumerate(paths[index]):
            if node not in at:
                at[node] = len(out.tokens)
                out.tokens.append(examples[index].input_ids[depth])
                out.targets.append(IGNORE)
                out.parents.append(parent)
                out.depths.append(depth)
            parent = at[node]
    for index in row:
        example, shared = examples[index], len(paths[index])
        parent = at[paths[index][-1]] if shared else -1
        for depth in range(shared, len(example)):
            out.tokens.append(example.input_ids[depth])
            out.targets.append(example.targets[depth])
            out.parents.append(parent)
            out.depths.append(depth)
            parent = len(out.tokens) - 1
    return out


def _ancestor_mask(parents: torch.Tensor, depths: torch.Tensor) -> torch.Tensor:
    """``mask[q, k]``: ``k`` is ``q`` or one of its ancestors; built a depth at a time, each
    token's line a copy of its parent's."""
    width = len(parents)
    mask = torch.zeros((width, width), dtype=torch.bool)
    for depth in range(int(depths.max()) + 1 if width else 0):
        here = (depths == depth).nonzero().squeeze(1)
        if depth:
            mask[here] = mask[parents[here]]
        mask[here, here] = True
    return mask


def packed_batch(examples: Sequence[Encoded], pad_id: int) -> Batch:
    paths = trie_paths(examples)
    lengths = [len(e) for e in examples]
    saved = sum(len(p) for p in paths) - len({node for p in paths for node in p})
    capacity = max(lengths) + (SHARED_ROW_BUDGET if saved >= MIN_SHARED else 0)
    rows = [_layout(examples, paths, row) for row in pack_rows(lengths, capacity, paths)]
    width = max(len(row.tokens) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), 1, width, width), dtype=torch.bool)
    for r, row in enumerate(rows):
        used = len(row.tokens)
        padding = range(width - used)  # a causal block of its own
        parents = torch.tensor(row.parents + [used + i - 1 if i else -1 for i in padding], dtype=torch.long)
        depths = torch.tensor(row.depths + list(padding), dtype=torch.long)
        input_ids[r, :used] = torch.tensor(row.tokens, dtype=torch.long)
        targets[r, :used] = torch.tensor(row.targets, dtype=torch.long)
        positions[r] = depths
        mask[r, 0] = _ancestor_mask(parents, depths)
    inputs = {"input_ids": input_ids, "position_ids": positions, "attention_mask": mask}
    return Batch(inputs, targets, sum(lengths), sum(e.n_targets for e in examples))
