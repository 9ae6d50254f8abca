"""Turning answers served to a user into answer-log rows, and writing them (``assistant.service``
calls ``record_answers`` when a caller says where the answer went: ``chat``, ``api`` or ``cli``).

What each row takes from an ``Answer``: the length of ``response``; the citations; "not in the
knowledge base" = the trace has a ``not_found`` step (RAG's weak retrieval); the best hit's score =
the highest ``score`` (``Hit.score``, a relevance in [0, 1], or the reranker's score) among the
trace's ``retrieve`` hits, None when nothing was retrieved.

Recording never fails an answer: a database that cannot be written (locked past the busy
timeout, a read-only disk) is logged as a warning and the answer is returned as usual.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from assistant.feedback.api import question_hash
from assistant.monitoring.store import AnswerLogEntry, AnswerLogStore, iso
from assistant.settings import Settings
from assistant.types import Answer

log = logging.getLogger("ladder.monitoring")


def best_score(answer: Answer) -> float | None:
    scores = [
        float(hit["score"])
        for step in answer.trace.steps
        if step.kind == "retrieve"
        for hit in step.detail.get("hits", [])
        if isinstance(hit, dict) and hit.get("score") is not None
    ]
    return max(scores) if scores else None


def not_in_kb(answer: Answer) -> bool:
    return any(step.kind == "not_found" for step in answer.trace.steps)


def entry_for(
    answer: Answer,
    *,
    source: str,
    latency_s: float,
    strategy: str | None = None,
    kb: str | None = None,
    session_id: str | None = None,
    now: datetime | None = None,
) -> AnswerLogEntry:
    """One answer-log row for ``answer`` (not written)."""
    return AnswerLogEntry(
        created=iso(now or datetime.now(UTC)),
        source=source,
        question=answer.user_input,
        question_hash=question_hash(answer.user_input),
        answer_chars=len(answer.response),
        latency_ms=round(latency_s * 1000, 1),
        not_in_kb=not_in_kb(answer),
        citations=len(answer.citations),
        best_score=best_score(answer),
        kb=kb or None,
        model=answer.model_id,
        strategy=strategy,
        session_id=session_id,
    )


def record_answers(
    settings: Settings,
    answers: Sequence[Answer],
    *,
    source: str,
    latencies_s: Sequence[float],
    strategy: str | None = None,
    kb: str | None = None,
    session_id: str | None = None,
    now: datetime | None = None,
) -> list[AnswerLogEntry]:
    """Write one row per answer (nothing when ``settings.answer_log`` is false) and prune rows
    older than ``settings.answer_log_days``; the rows written ([] when none was)."""
    if not settings.answer_log or not answers:
        return []
    entries = [
        entry_for(a, source=source, latency_s=s, strategy=strategy, kb=kb, session_id=session_id, now=now)
        for a, s in zip(answers, latencies_s, strict=True)
    ]
    try:
        with AnswerLogStore(settings.db_path) as store:
            store.add(entries, settings.answer_log_days, now)
    except (sqlite3.Error, OSError) as exc:
        log.warning("the answer log could not be written (%s); the answer is unaffected", exc)
        return []
    return entries
