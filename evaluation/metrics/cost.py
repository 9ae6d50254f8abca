"""Cost per question: tokens, model calls, compute, latency, and money from a price table.

Cost is not a per-item score but a summary of a strategy's records. Tokens and calls come
from the backends' usage. Two times, kept apart:

- **Compute per question (batched)**: ``compute_s`` is the wall time the runner measured for
  the batch an item was answered in, divided by the items the batch held, so a batched local
  model is charged for the machine time it really used. The price uses it.
- **Single-request latency**: what one user waits for one answer. A batched backend reports
  the whole batch's wall time as each answer's ``latency_s``, which is no one's latency, so
  the runner measures it on requests answered one at a time (``latency_sample`` of the
  suite's questions after the batched run, or every item when each batch held one) and
  passes those times here. p50/p95 are nearest-rank: with fewer than 20 requests the p95 is
  the slowest request measured, and the report says on how many it was measured.

The price table is YAML (the ``price_table`` setting), first match wins::

    currency: USD
    prices:
      - match: "openai:gpt-4o-mini*"   # fnmatch on the model reference
        prompt_per_1m: 0.15            # per million prompt tokens
        completion_per_1m: 0.60
        per_call: 0.0
      - match: "*"                     # everything else: local compute time
        compute_per_hour: 0.10

Without a table, local models cost ``DEFAULT_COMPUTE_PER_HOUR`` per hour of compute (a
small cloud VM; the report says it is a default), fake backends cost nothing, and endpoint
models have no known price (the report says so instead of printing 0).

**The judge's share** is summed apart, priced by the same table under the judge's model
reference: its calls and tokens per question and its wall time per question (what a local
judge's compute price is charged on), from the records' ``judge_*`` fields. It is what
scoring cost, not what answering costs, so it is never added to ``cost_per_1k_questions``
(which a decision's cost limit reads). A judgement from the cache costs nothing.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ConfigError
from evaluation.results import CostResult, ItemRecord

DEFAULT_COMPUTE_PER_HOUR = 0.10


@dataclass(frozen=True)
class Price:
    match: str
    prompt_per_1m: float = 0.0
    completion_per_1m: float = 0.0
    per_call: float = 0.0
    compute_per_hour: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prompt_per_1m", "completion_per_1m", "per_call", "compute_per_hour"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"price {self.match!r}: {name} must be a number >= 0, got {value!r}")

    def per_question(
        self, prompt_tokens: float, completion_tokens: float, calls: float, compute_s: float
    ) -> float:
        return (
            prompt_tokens * self.prompt_per_1m / 1e6
            + completion_tokens * self.completion_per_1m / 1e6
            + calls * self.per_call
            + compute_s * self.compute_per_hour / 3600
        )


@dataclass
class PriceTable:
    prices: list[Price]
    currency: str = "USD"
    source: str = "built-in defaults"

    def lookup(self, model: str) -> tuple[Price | None, str]:
        """The first price whose pattern matches ``model``, and a description of where it came from."""
        for price in self.prices:
            if fnmatch.fnmatchcase(model, price.match):
                return price, f"{self.source}: {price.match!r}"
        if self.source == "built-in defaults":
            if model == "fake" or model.startswith("fake:"):
                return Price("fake"), "fake backend: free"
            if model.startswith("openai:"):
                return None, "no price for this endpoint model: add it to a price_table file"
            return Price("local", compute_per_hour=DEFAULT_COMPUTE_PER_HOUR), (
                f"default local compute at {DEFAULT_COMPUTE_PER_HOUR:.2f} {self.currency}/hour "
                "(set price_table)"
            )
        return None, f"no entry in {self.source} matches {model!r}"


def load_price_table(path: Path | str | None) -> PriceTable:
    if path is None:
        return PriceTable([])
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"price table not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("prices", []), list):
        raise ConfigError(f"{path}: a price table is a mapping with a `prices` list", hint=__doc__)
    prices = []
    for index, entry in enumerate(data.get("prices", [])):
        if not isinstance(entry, dict) or "match" not in entry:
            raise ConfigError(f"{path}: prices[{index}] needs `match` (an fnmatch pattern on the model)")
        try:
            prices.append(Price(**entry))
        except TypeError as exc:
            raise ConfigError(f"{path}: prices[{index}]: {exc}") from None
    return PriceTable(prices, str(data.get("currency", "USD")), str(path))


# How the single-request latencies were measured (``CostResult.latency_source``).
LATENCY_SAMPLE = "unbatched sample"  # a few items answered again one at a time after the run
LATENCY_EVERY_ITEM = "every item, one at a time"  # each batch held one item: its wall time
LATENCY_PER_ANSWER = "per answer"  # the records' own latency_s (callers that answered one by one)
LATENCY_NOT_MEASURED = "not measured"


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``q`` of them at or below.

    For latencies: it is always a time some request took, and with few requests the p95 is
    the slowest one (5 requests: the max) rather than an interpolation below it.
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def cost_summary(
    records: Sequence[ItemRecord],
    model: str,
    table: PriceTable,
    latencies: Sequence[float] | None = None,
    latency_source: str = LATENCY_PER_ANSWER,
    judge: str | None = None,
) -> CostResult:
    """Summarise ``records``' usage; ``latencies`` are single-request times measured apart.

    Without ``latencies`` the records' own ``latency_s`` are taken as single requests, which
    is right only when each was answered on its own (the runner always passes them).
    ``judge``: the judge's model reference, when the run had one: its share is summed apart.
    """
    n = len(records)
    if n == 0:
        return CostResult(0, 0.0, 0.0, 0.0, None, None, None, table.currency, "no records")
    prompt = sum(r.prompt_tokens for r in records) / n
    completion = sum(r.completion_tokens for r in records) / n
    calls = sum(r.model_calls for r in records) / n
    compute = sum(r.compute_s for r in records) / n
    if latencies is None:
        latencies = [r.latency_s for r in records]
    elif not latencies:
        latency_source = LATENCY_NOT_MEASURED
    price, source = table.lookup(model)
    per_1k = None if price is None else 1000 * price.per_question(prompt, completion, calls, compute)
    cost = CostResult(
        questions=n,
        prompt_tokens_mean=prompt,
        completion_tokens_mean=completion,
        model_calls_mean=calls,
        latency_p50_s=nearest_rank(latencies, 0.5),
        latency_p95_s=nearest_rank(latencies, 0.95),
        cost_per_1k_questions=per_1k,
        currency=table.currency,
        price_source=source,
        cached_items=sum(1 for r in records if r.cached),
        compute_s_mean=compute,
        latency_n=len(latencies),
        latency_source=latency_source,
    )
    if judge:
        _add_judge_share(cost, records, judge, table)
    return cost


def _add_judge_share(cost: CostResult, records: Sequence[ItemRecord], judge: str, table: PriceTable) -> None:
    n = len(records)
    cost.judge_model = judge
    cost.judge_calls_mean = sum(r.judge_calls for r in records) / n
    cost.judge_prompt_tokens_mean = sum(r.judge_prompt_tokens for r in records) / n
    cost.judge_completion_tokens_mean = sum(r.judge_completion_tokens for r in records) / n
    cost.judge_compute_s_mean = sum(r.judge_compute_s for r in records) / n
    price, cost.judge_price_source = table.lookup(judge)
    if price is not None:
        cost.judge_cost_per_1k_questions = 1000 * price.per_question(
            cost.judge_prompt_tokens_mean,
            cost.judge_completion_tokens_mean,
            cost.judge_calls_mean,
            cost.judge_compute_s_mean,
        )
