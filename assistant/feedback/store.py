"""The feedback store: end users' ratings of answers, and every promotion made from them.

Two tables in ``LADDER_HOME/ladder.db`` (SQLite, WAL, like the run store); all their SQL is here.

- ``feedback``: one row per rating: the question, the answer, the model and strategy that
  gave it, the retrieved contexts and citations, the rating (``up``/``down``), an optional
  correction and comment, the session, where it came from, the time and the review status
  (``new``, ``promoted``, ``dismissed``).
- ``feedback_promotions``: one row per promotion (to an eval suite, to SFT data, to preference
  pairs), with the file written and the hash of the normalised question. The hash is what
  keeps one question out of both a training set and the test split it is judged on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.storage import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating TEXT NOT NULL,
    correction TEXT,
    comment TEXT,
    model TEXT,
    strategy TEXT,
    contexts TEXT NOT NULL,
    citations TEXT NOT NULL,
    session_id TEXT,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    question_hash TEXT NOT NULL,
    reviewed TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS feedback_status ON feedback (status, id);
CREATE TABLE IF NOT EXISTS feedback_promotions (
    feedback_id INTEGER NOT NULL REFERENCES feedback (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    side TEXT NOT NULL,
    path TEXT NOT NULL,
    question_hash TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (feedback_id, target)
);
CREATE INDEX IF NOT EXISTS feedback_promotions_question ON feedback_promotions (question_hash, side);
"""

NEW, PROMOTED, DISMISSED = "new", "promoted", "dismissed"
STATUSES = (NEW, PROMOTED, DISMISSED)
RATINGS = ("up", "down")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Promotion:
    feedback_id: int
    target: str  # suite | sft | pairs
    side: str  # test (suite) | train (sft, pairs)
    path: str
    created: str


@dataclass
class FeedbackItem:
    id: int
    created: str
    question: str
    answer: str
    rating: str
    correction: str | None = None
    comment: str | None = None
    model: str | None = None
    strategy: str | None = None
    contexts: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    session_id: str | None = None
    source: str = "api"
    status: str = NEW
    question_hash: str = ""
    reviewed: str | None = None
    note: str | None = None
    promotions: list[Promotion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


_COLUMNS = (
    "id, created, question, answer, rating, correction, comment, model, strategy, contexts, citations, "
    "session_id, source, status, question_hash, reviewed, note"
)


def _item(row: tuple[Any, ...]) -> FeedbackItem:
    values = list(row)
    values[9] = json.loads(values[9])
    values[10] = json.loads(values[10])
    return FeedbackItem(*values)


class FeedbackStore(SqliteStore):
    """Open with ``FeedbackStore(path)``; use as a context manager or call ``close()``."""

    SCHEMA = SCHEMA

    def __init__(self, path: Path | str) -> None:
        # The server records feedback from its request threads.
        super().__init__(path, any_thread=True)

    def add(self, item: FeedbackItem) -> int:
        cursor = self.db.execute(
            "INSERT INTO feedback (created, question, answer, rating, correction, comment, model, strategy,"
            " contexts, citations, session_id, source, status, question_hash)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                item.created,
                item.question,
                item.answer,
                item.rating,
                item.correction,
                item.comment,
                item.model,
                item.strategy,
                json.dumps(item.contexts, ensure_ascii=False),
                json.dumps(item.citations, ensure_ascii=False, default=str),
                item.session_id,
                item.source,
                item.status,
                item.question_hash,
            ),
        )
        return int(cursor.lastrowid or 0)

    def get(self, feedback_id: int) -> FeedbackItem | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM feedback WHERE id = ?", (feedback_id,)).fetchone()
        if row is None:
            return None
        item = _item(row)
        item.promotions = self.promotions(feedback_id)
        return item

    def query(
        self,
        status: str | None = None,
        rating: str | None = None,
        session_id: str | None = None,
        limit: int | None = 50,
    ) -> list[FeedbackItem]:
        """Newest first."""
        where, args = [], []
        for column, value in (("status", status), ("rating", rating), ("session_id", session_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM feedback"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        items = [_item(row) for row in self.db.execute(sql, args)]
        by_id: dict[int, list[Promotion]] = {}
        for promotion in self._all_promotions([i.id for i in items]):
            by_id.setdefault(promotion.feedback_id, []).append(promotion)
        for item in items:
            item.promotions = by_id.get(item.id, [])
        return items

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM feedback GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}

    def promotions(self, feedback_id: int) -> list[Promotion]:
        return self._all_promotions([feedback_id])

    def _all_promotions(self, ids: list[int]) -> list[Promotion]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT feedback_id, target, side, path, created FROM feedback_promotions"
            f" WHERE feedback_id IN ({marks}) ORDER BY created, target",
            ids,
        )
        return [Promotion(*row) for row in rows]

    def promotions_of_question(self, question_hash: str) -> list[Promotion]:
        """Every promotion of any rating of this (normalised) question."""
        rows = self.db.execute(
            "SELECT feedback_id, target, side, path, created FROM feedback_promotions"
            " WHERE question_hash = ? ORDER BY created",
            (question_hash,),
        )
        return [Promotion(*row) for row in rows]

    def suite_paths(self) -> list[str]:
        """Every suite YAML a promotion to ``suite`` wrote to (the test side's files)."""
        rows = self.db.execute(
            "SELECT DISTINCT path FROM feedback_promotions WHERE target = 'suite' ORDER BY path"
        )
        return [str(path) for (path,) in rows]

    def add_promotion(self, promotion: Promotion, question_hash: str) -> None:
        self.db.execute(
            "INSERT INTO feedback_promotions (feedback_id, target, side, path, question_hash, created)"
            " VALUES (?,?,?,?,?,?)",
            (promotion.feedback_id, promotion.target, promotion.side, promotion.path, question_hash,
             promotion.created),
        )  # fmt: skip
        self.set_status(promotion.feedback_id, PROMOTED)

    def set_status(self, feedback_id: int, status: str, note: str | None = None) -> None:
        self.db.execute(
            "UPDATE feedback SET status = ?, reviewed = ?, note = COALESCE(?, note) WHERE id = ?",
            (status, now(), note, feedback_id),
        )
