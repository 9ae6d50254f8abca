"""How well a judge's scores agree with a person's verdicts: pairwise concordance.

Judged metrics live on different scales (answer relevancy is a cosine that bunches near the top;
faithfulness a share of statements), so agreement is measured by order, not by value: among
the pairs of items a person scored differently, the share the judge puts in the same order
(Harrell's C; ties and n/a count one half). 0.5 is a coin, 1.0 a judge that always orders as the
person does. A judge that fails on an item (n/a) says nothing about it, which costs agreement,
so failing is never cheaper than answering.

The interval is a seeded bootstrap over items (the same inputs give the same interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Agreement:
    concordance: float | None  # None when no two items have different labels
    low: float | None
    high: float | None
    n: int  # items with a label
    failed: int  # of those, items the judge gave no score (n/a)
    pairs: int  # pairs of items with different labels
    mae: float | None  # mean |score - label| over the scored items

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "concordance": self.concordance,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "failed": self.failed,
            "pairs": self.pairs,
            "mae": self.mae,
        }


def _is_na(value: float | None) -> bool:
    return value is None or math.isnan(value)


def agreement(labels: Sequence[float], scores: Sequence[float | None], seed: int = 0) -> Agreement:
    """Concordance of ``scores`` with ``labels`` (same order, one per item), with a bootstrap CI."""
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    n = len(labels)
    y = np.array(labels, dtype=np.float64)
    failed = sum(1 for s in scores if _is_na(s))
    scored = [
        (float(x), float(v)) for x, v in zip(scores, labels, strict=True) if x is not None and not _is_na(x)
    ]
    mae = float(np.mean([abs(x - v) for x, v in scored])) if scored else None
    s = np.array([np.nan if v is None else float(v) for v in scores], dtype=np.float64)
    differ = (y[:, None] != y[None, :]).astype(float)
    np.fill_diagonal(differ, 0.0)
    pairs = int(differ.sum() // 2)
    if pairs == 0:
        return Agreement(None, None, None, n, failed, 0, mae)
    # credit[i, j]: 1 when the judge orders i and j as the person does, 0 the other way, 0.5 for a
    # tie or an n/a on either side.
    order = np.sign(y[:, None] - y[None, :]) * np.sign(s[:, None] - s[None, :])
    credit = np.where(np.isnan(order), 0.5, np.where(order > 0, 1.0, np.where(order < 0, 0.0, 0.5)))
    weighted = differ * credit
    point = float(weighted.sum() / differ.sum())
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=RESAMPLES).astype(float)
    # A resample's concordance over its pairs, item i drawn counts[b, i] times.
    top = np.einsum("bi,ij,bj->b", counts, weighted, counts)
    bottom = np.einsum("bi,ij,bj->b", counts, differ, counts)
    valid = bottom > 0
    values = top[valid] / bottom[valid]
    tail = (1 - CONFIDENCE) / 2
    low, high = (
        (float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)))
        if len(values)
        else (None, None)
    )
    return Agreement(point, low, high, n, failed, pairs, mae)
