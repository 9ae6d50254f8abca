"""The data report: counts at each step, token lengths, duplicate rate, label balance.

``prepare`` fills a ``DataReport`` as it goes; ``as_dict`` is what ``report.json`` holds (and
what the UI reads), and the CLI prints it as tables.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finetune.data.load import Example
from finetune.data.split import stratum_key

# Token-length histogram bucket edges; the last bucket is open-ended.
LENGTH_EDGES = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
GENERAL_LABEL = "(general)"


@dataclass
class Step:
    data: str  # "domain" or "general"
    step: str
    before: int
    after: int
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "step": self.step,
            "before": self.before,
            "after": self.after,
            "dropped": dict(self.dropped),
        }


@dataclass
class DataReport:
    mode: str = "chat"
    steps: list[Step] = field(default_factory=list)
    changed: dict[str, dict[str, int]] = field(default_factory=dict)  # data -> rule -> examples changed
    pii: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # exact / near pairs
    leaks: list[dict[str, Any]] = field(default_factory=list)
    suites: list[dict[str, Any]] = field(default_factory=list)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> {domain, general, total}
    lengths: dict[str, Any] = field(default_factory=dict)
    balance: dict[str, Any] = field(default_factory=dict)
    mixing: dict[str, Any] = field(default_factory=dict)

    def step(
        self, data: str, name: str, before: int, after: int, dropped: dict[str, int] | None = None
    ) -> None:
        self.steps.append(Step(data, name, before, after, {k: v for k, v in (dropped or {}).items() if v}))

    def count(self, data: str, name: str) -> int | None:
        return next((s.after for s in self.steps if s.data == data and s.step == name), None)

    def duplicate_rate(self, data: str) -> float:
        """Duplicates dropped (exact + near) over the examples that reached dedup."""
        steps = {s.step: s for s in self.steps if s.data == data}
        if "exact dedup" not in steps or not steps["exact dedup"].before:
            return 0.0
        removed = steps["exact dedup"].before - steps["near dedup"].after
        return removed / steps["exact dedup"].before

    def funnel(self, data: str = "domain") -> str:
        """One line: the counts step by step with the reasons, for error messages."""
        parts = []
        for s in self.steps:
            if s.data != data:
                continue
            why = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in s.dropped.items())
            parts.append(f"{s.step} {s.after}" + (f" ({why})" if why else ""))
        return " → ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "steps": [s.as_dict() for s in self.steps],
            "changed": self.changed,
            "pii_masked": self.pii,
            "duplicates": {
                "rate": {
                    d: round(self.duplicate_rate(d), 4)
                    for d in ("domain", "general")
                    if any(s.data == d for s in self.steps)
                },
                **{kind: pairs[:50] for kind, pairs in self.duplicates.items()},
                "counts": {kind: len(pairs) for kind, pairs in self.duplicates.items()},
            },
            "leakage": {"dropped": len(self.leaks), "items": self.leaks, "suites": self.suites},
            "splits": self.splits,
            "mixing": self.mixing,
            "lengths": self.lengths,
            "label_balance": self.balance,
        }


def length_stats(lengths: Sequence[int], tokenizer: str) -> dict[str, Any]:
    """Histogram (from the first to the last non-empty bucket) and summary of token lengths."""
    counts = [0] * len(LENGTH_EDGES)
    for n in lengths:
        counts[sum(1 for edge in LENGTH_EDGES[1:] if n >= edge)] += 1
    labels = [
        f"{low}-{LENGTH_EDGES[i + 1] - 1}" if i + 1 < len(LENGTH_EDGES) else f"{low}+"
        for i, low in enumerate(LENGTH_EDGES)
    ]
    used = [i for i, count in enumerate(counts) if count]
    histogram = (
        [{"bucket": labels[i], "count": counts[i]} for i in range(used[0], used[-1] + 1)] if used else []
    )
    summary: dict[str, Any] = {"tokenizer": tokenizer, "count": len(lengths), "histogram": histogram}
    if lengths:
        ordered = sorted(lengths)
        summary.update(
            min=ordered[0],
            median=statistics.median(ordered),
            mean=round(statistics.fmean(ordered), 1),
            p95=ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            max=ordered[-1],
        )
    return summary


def balance_key(examples: Sequence[Example], stratify_by: str | None) -> str:
    """What label balance is shown by: the stratification key, else the reply when it looks like a
    label (few distinct short replies), else the first tag."""
    if stratify_by:
        return stratify_by
    domain = [e for e in examples if e.origin == "domain" and not e.is_text]
    replies = Counter(e.response.strip() for e in domain)
    if domain and len(replies) <= min(20, len(domain) // 5) and all(len(r) <= 40 for r in replies):
        return "label"
    return "tag"


def label_balance(splits: Mapping[str, Sequence[Example]], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key}
    for name, examples in splits.items():
        counts = Counter(GENERAL_LABEL if e.origin == "general" else stratum_key(e, key) for e in examples)
        out[name] = dict(counts.most_common())
    return out


__all__ = ["LENGTH_EDGES", "DataReport", "Step", "balance_key", "label_balance", "length_stats"]
