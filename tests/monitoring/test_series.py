"""Daily series and windows against numbers counted by hand, and the JSON/CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assistant.feedback import question_hash
from assistant.feedback.store import FeedbackItem, FeedbackStore
from assistant.monitoring import AnswerLogEntry, AnswerLogStore
from assistant.settings import Settings, load_settings
from evaluation.monitor import daily_series, series_csv, series_json, window_stats

DAY1, DAY2 = "2026-03-02", "2026-03-03"


def log(
    day: str,
    hour: int,
    latency: float,
    kb: str | None = None,
    not_in_kb: bool = False,
    citations: int = 0,
    score: float | None = None,
) -> AnswerLogEntry:
    question = f"q {day} {hour}"
    return AnswerLogEntry(
        f"{day}T{hour:02d}:00:00+00:00",
        "chat",
        question,
        question_hash(question),
        10,
        latency,
        not_in_kb,
        citations,
        score,
        kb,
    )


def rating(day: str, hour: int, value: str) -> FeedbackItem:
    return FeedbackItem(0, f"{day}T{hour:02d}:30:00+00:00", "q", "a", value, question_hash="h")


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    settings = load_settings()
    day1 = [
        log(DAY1, 8, 100.0),  # a prompt-only answer: no kb, counts for volume and latency only
        log(DAY1, 9, 400.0, "kb", citations=2, score=0.8),
        log(DAY1, 10, 200.0, "kb", citations=0, score=0.6),
        log(DAY1, 11, 300.0, "kb", not_in_kb=True, score=0.2),
        log(DAY1, 12, 900.0, "kb", citations=1, score=0.7),
    ]
    day2 = [log(DAY2, 9, 50.0, "kb", not_in_kb=True, score=None)]
    with AnswerLogStore(settings.db_path) as store:
        store.add(day1 + day2, keep_days=10_000, now=datetime(2026, 3, 4, tzinfo=UTC))
    with FeedbackStore(settings.db_path) as store:
        for item in [
            rating(DAY1, 9, "down"),
            rating(DAY1, 10, "up"),
            rating(DAY1, 11, "up"),
            rating(DAY1, 12, "down"),
            rating(DAY2, 9, "down"),
        ]:
            store.add(item)
    return settings


def test_a_day_against_hand_counts(settings: Settings) -> None:
    series = daily_series(settings, days=3, as_of=datetime(2026, 3, 3, 18, tzinfo=UTC))
    assert [s.day for s in series] == ["2026-03-01", DAY1, DAY2]
    empty, one, two = series
    assert (empty.questions, empty.thumbs_down_rate, empty.latency_p95_ms) == (0, None, None)
    assert one.questions == 5
    assert (one.ratings, one.thumbs_down, one.thumbs_down_rate) == (4, 2, 0.5)
    assert (one.kb_answers, one.not_in_kb, one.not_in_kb_rate) == (4, 1, 0.25)
    # the answers that could cite: kb and found (3); two of them cite
    assert (one.citable, one.cited, one.citation_rate) == (3, 2, 2 / 3)
    # latencies sorted 100 200 300 400 900: nearest rank p50 = 3rd = 300, p95 = 5th = 900
    assert (one.latency_p50_ms, one.latency_p95_ms) == (300.0, 900.0)
    # scores sorted 0.2 0.6 0.7 0.8: p50 = 2nd = 0.6, p10 = 1st = 0.2
    assert (one.scored, one.best_score_median, one.best_score_p10) == (4, 0.6, 0.2)
    assert (two.questions, two.not_in_kb_rate, two.citation_rate, two.best_score_median) == (
        1,
        1.0,
        None,
        None,
    )
    assert (two.ratings, two.thumbs_down_rate) == (1, 1.0)


def test_a_window_counts_what_falls_inside_it(settings: Settings) -> None:
    window = window_stats(settings, days=1, as_of=datetime(2026, 3, 3, 10, 45, tzinfo=UTC))
    # 2026-03-02T10:45 .. 2026-03-03T10:45: day 1's answers at 11 and 12, day 2's at 9
    assert window.questions == 3 and (window.ratings, window.thumbs_down) == (3, 2)
    assert window.not_in_kb_rate == 2 / 3 and window.latency_p95_ms == 900.0


def test_json_and_csv_exports_hold_the_same_numbers(settings: Settings) -> None:
    series = daily_series(
        settings, days=2, as_of=datetime(2026, 3, 4, tzinfo=UTC)
    )  # midnight: through 3 March
    data = json.loads(series_json(series))
    assert [d["day"] for d in data] == [DAY1, DAY2]
    assert data[0]["thumbs_down_rate"] == 0.5 and data[1]["citation_rate"] is None
    table = list(csv.DictReader(io.StringIO(series_csv(series))))
    assert table[0]["latency_p95_ms"] == "900.0" and table[1]["citation_rate"] == ""
    assert table[0]["questions"] == "5"
