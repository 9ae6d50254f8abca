"""From an answer to an ``ItemRecord``: the cache entry an answer is stored as, the metric
sample, and the record with its scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assistant.types import Answer, Usage
from evaluation.items import SuiteItem
from evaluation.metrics.base import Metric, build_sample
from evaluation.plan import NOT_APPLICABLE, Lane
from evaluation.results import ItemRecord, ItemScore


def make_record(
    lane: Lane, item: SuiteItem, key: str, entry: dict[str, Any], cached: bool, metrics: Sequence[Metric]
) -> ItemRecord:
    answer = Answer(
        item.question.user_input,
        entry.get("response") or "",
        usage_of(entry),
        0.0,
        "",
        retrieved_contexts=entry.get("retrieved_contexts") or [],
    )
    sample = build_sample(
        item,
        answer if entry.get("response") is not None else None,
        choice_scores=entry.get("choice_scores"),
    )
    retrieves = "kb" in lane.config
    if not retrieves:
        sample["retrieved_contexts"] = None
    scores = {}
    for metric in metrics:
        score = metric.score(sample)
        reason = score.reason
        if score.value is None and not retrieves and "retrieved_contexts" in reason:
            reason = f"{NOT_APPLICABLE}: {lane.strategy.name} does not retrieve"
        scores[metric.label] = ItemScore(score.value, reason, dict(score.detail))
    q = item.question
    return ItemRecord(
        strategy=lane.label,
        item_id=q.id,
        cache_key=key,
        user_input=q.user_input,
        prompt=entry.get("prompt") or item.prompt,
        response=entry.get("response"),
        reference=q.reference,
        retrieved_contexts=list(entry.get("retrieved_contexts") or []),
        reference_contexts=q.reference_contexts,
        choices=q.choices,
        choice_scores=entry.get("choice_scores"),
        scores=scores,
        prompt_tokens=int(entry.get("prompt_tokens", 0)),
        completion_tokens=int(entry.get("completion_tokens", 0)),
        model_calls=int(entry.get("model_calls", 0)),
        latency_s=float(entry.get("latency_s", 0.0)),
        compute_s=float(entry.get("compute_s", 0.0)),
        model_id=str(entry.get("model_id", "")),
        subject=item.subject,
        category=item.category,
        tags=list(q.tags),
        source=item.source,
        cached=cached,
        trace=list(entry.get("trace") or []),
    )


def usage_of(entry: Mapping[str, Any]) -> Usage:
    return Usage(
        int(entry.get("prompt_tokens", 0)),
        int(entry.get("completion_tokens", 0)),
        int(entry.get("model_calls", 0)),
    )


def answer_entry(answer: Answer, item: SuiteItem) -> dict[str, Any]:
    return {
        "response": answer.response,
        "retrieved_contexts": list(answer.retrieved_contexts),
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
        "model_calls": answer.usage.model_calls,
        "latency_s": answer.latency_s,
        "model_id": answer.model_id,
        "prompt": item.prompt,
        "trace": [{"kind": s.kind, **s.detail} for s in answer.trace.steps],
    }


def sample_of(record: ItemRecord, item: SuiteItem) -> dict[str, Any]:
    answer = Answer(
        record.user_input,
        record.response or "",
        usage_of({}),
        0.0,
        "",
        retrieved_contexts=record.retrieved_contexts,
    )
    return build_sample(item, answer if record.response is not None else None)
