"""Decisions in the run store (``LADDER_HOME/ladder.db``, the same SQLite file as the runs).

One table, created if missing, so an older database gains it on first use:
``decisions``: id, name, the config file, created, status, the recommended rung, and the
whole ``Decision`` as JSON. The evaluation runs a decision made are in ``runs``; the
decision's JSON names their ids. All SQL for decisions lives here.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluation.decide.result import Decision
from evaluation.store import RunNotFound, RunStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    config_path TEXT,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    recommended TEXT,
    decision TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_created ON decisions (created);
"""


def new_decision_id() -> str:
    return datetime.now(UTC).strftime("d%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class DecisionStore(RunStore):
    """The run store plus the decisions table (one connection, the same file)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self.db.executescript(SCHEMA)

    def __enter__(self) -> DecisionStore:
        return self

    def save(self, decision: Decision) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO decisions (decision_id, name, config_path, created, status, recommended,"
            " decision) VALUES (?,?,?,?,?,?,?)",
            (
                decision.decision_id,
                decision.name,
                decision.config_path,
                decision.created,
                decision.status,
                decision.recommended,
                json.dumps(decision.to_dict(), ensure_ascii=False, default=str),
            ),
        )

    def resolve_decision(self, ref: str) -> str:
        """An id from a full id, a unique prefix, ``latest`` or ``latest~N``."""
        if ref == "latest" or ref.startswith("latest~"):
            offset = int(ref.partition("~")[2] or 0)
            row = self.db.execute(
                "SELECT decision_id FROM decisions ORDER BY created DESC, rowid DESC LIMIT 1 OFFSET ?",
                (offset,),
            ).fetchone()
            if row is None:
                raise RunNotFound(f"no decision {ref!r}", hint="ladder decisions list")
            return str(row[0])
        rows = self.db.execute(
            "SELECT decision_id FROM decisions WHERE decision_id LIKE ?", (ref + "%",)
        ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise RunNotFound(f"no decision {ref!r}", hint="ladder decisions list")
        raise RunNotFound(f"{ref!r} matches {len(rows)} decisions", hint="give more characters of the id")

    def load_decision(self, ref: str) -> Decision:
        row = self.db.execute(
            "SELECT decision FROM decisions WHERE decision_id = ?", (self.resolve_decision(ref),)
        ).fetchone()
        return Decision.from_dict(json.loads(row[0]))

    def list_decisions(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT decision_id, name, created, status, recommended FROM decisions"
            " ORDER BY created DESC, rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("decision_id", "name", "created", "status", "recommended")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def delete_decision(self, ref: str) -> str:
        decision_id = self.resolve_decision(ref)
        self.db.execute("DELETE FROM decisions WHERE decision_id = ?", (decision_id,))
        return decision_id
