"""Daily series and window statistics from the answer log and the feedback table.

Definitions (every percentile is nearest-rank: the smallest value with at least q of them at
or below it, so a hand count gives the same number):

- ``questions``: answers served (chat, API, ``ladder ask``).
- ``thumbs_down_rate``: thumbs-down ratings / ratings, by the day the rating was given.
- ``not_in_kb_rate``: answers where RAG said "not in the knowledge base" / answers that had a
  knowledge base (a prompt-only answer is neither).
- ``citation_rate``: answers citing at least one source / answers that had a knowledge base and
  were not "not in the knowledge base" (the answers that could cite).
- ``latency_p50_ms``/``latency_p95_ms``: the answering time of one question (the service call,
  not the wait in the server's queue).
- ``best_score_median``/``best_score_p10``: ``Hit.score`` of each answer's best hit, over the
  answers that retrieved something.

A rate whose denominator is 0 is None ("n/a"), never 0.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from assistant.monitoring import AnswerLogEntry, AnswerLogStore, Rating, iso
from assistant.settings import Settings
from evaluation.metrics.cost import nearest_rank


@dataclass
class Stats:
    """One day's (or one window's) numbers; ``start``/``end`` are ISO times (end exclusive)."""

    start: str
    end: str
    questions: int = 0
    ratings: int = 0
    thumbs_down: int = 0
    thumbs_down_rate: float | None = None
    kb_answers: int = 0
    not_in_kb: int = 0
    not_in_kb_rate: float | None = None
    citable: int = 0
    cited: int = 0
    citation_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    scored: int = 0
    best_score_median: float | None = None
    best_score_p10: float | None = None

    @property
    def day(self) -> str:
        return self.start[:10]

    def to_dict(self) -> dict[str, object]:
        return {"day": self.day, **asdict(self)}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarise(start: str, end: str, entries: Sequence[AnswerLogEntry], ratings: Sequence[Rating]) -> Stats:
    """The numbers of a set of logged answers and ratings (already cut to the window)."""
    with_kb = [e for e in entries if e.kb]
    not_found = sum(1 for e in with_kb if e.not_in_kb)
    citable = [e for e in with_kb if not e.not_in_kb]
    cited = sum(1 for e in citable if e.citations > 0)
    down = sum(1 for r in ratings if r.rating == "down")
    latencies = [e.latency_ms for e in entries]
    scores = [e.best_score for e in entries if e.best_score is not None]
    return Stats(
        start=start,
        end=end,
        questions=len(entries),
        ratings=len(ratings),
        thumbs_down=down,
        thumbs_down_rate=_rate(down, len(ratings)),
        kb_answers=len(with_kb),
        not_in_kb=not_found,
        not_in_kb_rate=_rate(not_found, len(with_kb)),
        citable=len(citable),
        cited=cited,
        citation_rate=_rate(cited, len(citable)),
        latency_p50_ms=nearest_rank(latencies, 0.5),
        latency_p95_ms=nearest_rank(latencies, 0.95),
        scored=len(scores),
        best_score_median=nearest_rank(scores, 0.5),
        best_score_p10=nearest_rank(scores, 0.10),
    )


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def window_stats(settings: Settings, days: float, as_of: datetime | None = None) -> Stats:
    """The numbers of the last ``days`` days before ``as_of`` (default: now)."""
    end = as_of or datetime.now(UTC)
    start = end - timedelta(days=days)
    with AnswerLogStore(settings.db_path) as store:
        entries = store.entries(iso(start), iso(end))
        ratings = store.ratings(iso(start), iso(end))
    return summarise(iso(start), iso(end), entries, ratings)


def daily_series(settings: Settings, days: int = 30, as_of: datetime | None = None) -> list[Stats]:
    """One ``Stats`` per UTC day, oldest first: the ``days`` days up to the day of ``as_of``
    (default now; a midnight ``as_of`` ends the day before); days without traffic are there with
    zeros and n/a rates."""
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    last = ((as_of or datetime.now(UTC)) - timedelta(microseconds=1)).astimezone(UTC).date()
    first = last - timedelta(days=days - 1)
    start, end = day_start(first), day_start(last + timedelta(days=1))
    with AnswerLogStore(settings.db_path) as store:
        entries = store.entries(iso(start), iso(end))
        ratings = store.ratings(iso(start), iso(end))
    by_day_entries: dict[str, list[AnswerLogEntry]] = {}
    by_day_ratings: dict[str, list[Rating]] = {}
    for entry in entries:
        by_day_entries.setdefault(entry.created[:10], []).append(entry)
    for rating in ratings:
        by_day_ratings.setdefault(rating.created[:10], []).append(rating)
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        key = day.isoformat()
        out.append(
            summarise(
                iso(day_start(day)),
                iso(day_start(day + timedelta(days=1))),
                by_day_entries.get(key, []),
                by_day_ratings.get(key, []),
            )
        )
    return out


COLUMNS = ("day", *(f.name for f in fields(Stats)))


def series_json(series: Sequence[Stats]) -> str:
    return json.dumps([s.to_dict() for s in series], ensure_ascii=False, indent=2) + "\n"


def series_csv(series: Sequence[Stats]) -> str:
    """CSV with a header; n/a values are empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for stats in series:
        writer.writerow({k: ("" if v is None else v) for k, v in stats.to_dict().items()})
    return buffer.getvalue()


def format_value(value: float | int | str | None, kind: str = "") -> str:
    """A monitor value as the CLI and the Monitor page print it: ``n/a`` when there is none,
    a rate as a percentage, milliseconds with thousands separators, other numbers to 3 digits."""
    if value is None:
        return "n/a"
    if kind == "rate":
        return f"{float(value):.0%}"
    if kind == "ms":
        return f"{float(value):,.0f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
