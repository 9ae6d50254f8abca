"""The answer log: one row per answer served to a user (chat, API, ``ladder ask``), in
``LADDER_HOME/ladder.db`` beside the feedback table. All its SQL is here.

``answer_log`` columns: the time (UTC, ISO seconds), the source (``chat``/``api``/``cli``), the
model and strategy, the question and its normalised hash (``assistant.feedback.question_hash``,
the hash the feedback table keeps), the answer's length in characters, the latency in ms, whether
RAG answered "not in the knowledge base", the number of citations, the best hit's ``Hit.score``
(NULL when nothing was retrieved), the knowledge base's name and the session id.

A rating is linked to the answers it rates by **question hash + session id** (the feedback table
holds both; a rating with no session links to answers with no session), the rating coming at or
after the answer: ``rated`` gives the feedback ids of one logged answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.feedback.store import SCHEMA as FEEDBACK_SCHEMA
from assistant.storage import SqliteStore

SOURCES = ("chat", "api", "cli")

SCHEMA = """
CREATE TABLE IF NOT EXISTS answer_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    source TEXT NOT NULL,
    model TEXT,
    strategy TEXT,
    question TEXT NOT NULL,
    question_hash TEXT NOT NULL,
    answer_chars INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    not_in_kb INTEGER NOT NULL,
    citations INTEGER NOT NULL,
    best_score REAL,
    kb TEXT,
    session_id TEXT
);
CREATE INDEX IF NOT EXISTS answer_log_created ON answer_log (created);
CREATE INDEX IF NOT EXISTS answer_log_question ON answer_log (question_hash, session_id);
"""


def iso(moment: datetime) -> str:
    """The stored form of a time: UTC, ISO 8601 to the second (sorts as text)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass
class AnswerLogEntry:
    created: str
    source: str
    question: str
    question_hash: str
    answer_chars: int
    latency_ms: float
    not_in_kb: bool = False
    citations: int = 0
    best_score: float | None = None
    kb: str | None = None
    model: str | None = None
    strategy: str | None = None
    session_id: str | None = None
    id: int = 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rating:
    created: str
    rating: str  # up | down
    feedback_id: int


_COLUMNS = (
    "created, source, question, question_hash, answer_chars, latency_ms, not_in_kb, citations, "
    "best_score, kb, model, strategy, session_id, id"
)


def _entry(row: tuple[Any, ...]) -> AnswerLogEntry:
    values = list(row)
    values[6] = bool(values[6])
    return AnswerLogEntry(*values)


class AnswerLogStore(SqliteStore):
    """Open with ``AnswerLogStore(path)``; use as a context manager or call ``close()``."""

    # The feedback table too: the link to ratings joins it, and it may not exist yet.
    SCHEMA = SCHEMA + FEEDBACK_SCHEMA

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, any_thread=True)

    def add(self, entries: list[AnswerLogEntry], keep_days: int, now: datetime | None = None) -> None:
        """Write entries and delete those older than ``keep_days`` (before ``now``), in one transaction."""
        cutoff = iso((now or datetime.now(UTC)) - timedelta(days=keep_days))
        with self.transaction():
            for entry in entries:
                cursor = self.db.execute(
                    "INSERT INTO answer_log (created, source, question, question_hash, answer_chars,"
                    " latency_ms, not_in_kb, citations, best_score, kb, model, strategy, session_id)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        entry.created,
                        entry.source,
                        entry.question,
                        entry.question_hash,
                        entry.answer_chars,
                        entry.latency_ms,
                        int(entry.not_in_kb),
                        entry.citations,
                        entry.best_score,
                        entry.kb,
                        entry.model,
                        entry.strategy,
                        entry.session_id,
                    ),
                )
                entry.id = int(cursor.lastrowid or 0)
            self.db.execute("DELETE FROM answer_log WHERE created < ?", (cutoff,))

    def entries(self, since: str | None = None, until: str | None = None) -> list[AnswerLogEntry]:
        """Oldest first; ``since`` inclusive, ``until`` exclusive (stored ISO times)."""
        where, args = _window(since, until)
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM answer_log{where} ORDER BY created, id", args)
        return [_entry(row) for row in rows]

    def ratings(self, since: str | None = None, until: str | None = None) -> list[Rating]:
        """Every rating in the feedback table in the window, oldest first."""
        where, args = _window(since, until)
        rows = self.db.execute(f"SELECT created, rating, id FROM feedback{where} ORDER BY created, id", args)
        return [Rating(str(created), str(rating), int(fid)) for created, rating, fid in rows]

    def rated(self, answer_id: int) -> list[int]:
        """The feedback ids that rate one logged answer: the same question hash and session
        (NULL matches NULL), rated at or after it, and before the same question was answered
        again in that session."""
        row = self.db.execute(
            "SELECT created, question_hash, session_id FROM answer_log WHERE id = ?", (answer_id,)
        ).fetchone()
        if row is None:
            return []
        created, qhash, session = row
        later = self.db.execute(
            "SELECT MIN(created) FROM answer_log WHERE question_hash = ? AND session_id IS ? AND id > ?"
            " AND created >= ?",
            (qhash, session, answer_id, created),
        ).fetchone()[0]
        sql = "SELECT id FROM feedback WHERE question_hash = ? AND session_id IS ? AND created >= ?"
        args: list[Any] = [qhash, session, created]
        if later is not None:
            sql += " AND created < ?"
            args.append(later)
        return [int(fid) for (fid,) in self.db.execute(sql + " ORDER BY id", args)]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM answer_log").fetchone()[0])


def _window(since: str | None, until: str | None) -> tuple[str, list[str]]:
    where, args = [], []
    if since is not None:
        where.append("created >= ?")
        args.append(since)
    if until is not None:
        where.append("created < ?")
        args.append(until)
    return (" WHERE " + " AND ".join(where) if where else ""), args
