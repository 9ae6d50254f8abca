"""Seeded train/val/test splits (random or stratified) and mixing in general data.

Val and test get ``round(n * fraction)`` examples; a stratified split (see ``stratum_key``)
spreads them over the strata in proportion to their sizes, by largest remainder, and a
stratum always keeps at least one example in train. The domain data is split first;
general data joins the training split only, so validation loss and test scores measure
the domain task.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.errors import ConfigError
from finetune.data.errors import DataError
from finetune.data.load import Example

NONE = "(none)"


@dataclass(frozen=True)
class SplitFractions:
    train: float = 0.8
    val: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        values = (self.train, self.val, self.test)
        if any(v < 0 for v in values) or self.train <= 0 or abs(sum(values) - 1) > 1e-6:
            raise ValueError(f"split fractions must be >= 0 with train > 0 and sum to 1, got {values}")

    @classmethod
    def parse(cls, text: str) -> SplitFractions:
        """``"0.8,0.1,0.1"`` (train, val, test)."""
        try:
            values = [float(part) for part in text.split(",")]
            if len(values) != 3:
                raise ValueError(f"expected three numbers, got {len(values)}")
            return cls(*values)
        except ValueError as exc:
            raise ConfigError(f"bad --split {text!r}: {exc}", hint="e.g. --split 0.8,0.1,0.1") from None


def stratum_key(example: Example, by: str) -> str:
    """The stratum of an example: ``label`` (the reply), ``tag`` (the first tag), ``tag:PREFIX``
    (the value of the first tag ``PREFIX:value``) or ``source`` (the input file)."""
    if by == "label":
        return example.response.strip() or NONE
    if by == "tag":
        return example.tags[0] if example.tags else NONE
    if by.startswith("tag:"):
        prefix = by[4:] + ":"
        return next((t[len(prefix) :] for t in example.tags if t.startswith(prefix)), NONE)
    if by == "source":
        return example.source.rpartition(":")[0]
    raise ConfigError(f"unknown --stratify-by {by!r}", hint="use label, tag, tag:PREFIX or source")


def _allocate(total: int, sizes: dict[str, int], fraction: float) -> dict[str, int]:
    """``round(total * fraction)`` spread over strata in proportion to their sizes (largest remainder)."""
    target = math.floor(total * fraction + 0.5)
    quotas = {key: size * fraction for key, size in sizes.items()}
    counts = {key: math.floor(q) for key, q in quotas.items()}
    order = sorted(quotas, key=lambda key: (-(quotas[key] - counts[key]), key))
    for key in order[: max(0, target - sum(counts.values()))]:
        counts[key] += 1
    return counts


def split_examples(
    examples: Sequence[Example], fractions: SplitFractions, seed: int, stratify_by: str | None = None
) -> tuple[list[Example], list[Example], list[Example]]:
    """``(train, val, test)``, the same for the same input, fractions and seed.

    Val and test get ``round(n * fraction)`` examples overall, spread over the strata in
    proportion to their sizes; a stratum always keeps at least one example in train.
    """
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = {}
    for example in examples:
        key = stratum_key(example, stratify_by) if stratify_by else ""
        groups.setdefault(key, []).append(example)
    sizes = {key: len(group) for key, group in groups.items()}
    n_val = _allocate(len(examples), sizes, fractions.val)
    n_test = _allocate(len(examples), sizes, fractions.test)
    train: list[Example] = []
    val: list[Example] = []
    test: list[Example] = []
    for key in sorted(groups):
        group = list(groups[key])
        rng.shuffle(group)
        v, t = n_val[key], n_test[key]
        while v + t >= len(group) and v + t:
            if t >= v:
                t -= 1
            else:
                v -= 1
        val += group[:v]
        test += group[v : v + t]
        train += group[v + t :]
    for part in (train, val, test):
        rng.shuffle(part)
    return train, val, test


def general_needed(domain_train: int, ratio: float) -> int:
    """General examples for ``domain_train`` domain ones at domain:general = 1:ratio."""
    return math.ceil(domain_train * ratio - 1e-9)


def mix_general(
    train: list[Example], general: Sequence[Example], ratio: float, seed: int
) -> tuple[list[Example], int]:
    """Training examples with general data at 1:``ratio``, shuffled; and how many general were used.

    Asking for more general data than there is, is an error (with the largest ratio that fits).
    """
    if ratio < 0:
        raise ConfigError(f"--ratio must be >= 0, got {ratio}")
    needed = general_needed(len(train), ratio)
    if needed > len(general):
        fits = math.floor(len(general) / len(train) * 10) / 10 if train else 0.0
        raise DataError(
            f"--ratio {ratio:g} needs {needed} general examples for {len(train)} domain training "
            f"examples, but only {len(general)} are available after cleaning, dedup and the leakage check; "
            "nothing was written",
            hint=f"use --ratio {fits:g} or less, or give a larger --general file",
        )
    rng = random.Random(seed + 1)
    chosen = rng.sample(list(general), needed)
    mixed = [*train, *chosen]
    rng.shuffle(mixed)
    return mixed, needed


__all__ = ["SplitFractions", "general_needed", "mix_general", "split_examples", "stratum_key"]
