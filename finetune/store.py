"""Training runs and their metric series, in the same SQLite file as evaluation runs.

WAL mode, so the UI (or ``ladder finetune runs``) reads a curve while the trainer writes it;
each step's metrics are committed as they happen. All SQL for training lives here.

- ``training_runs``: one row per training of an adapter: status (running, complete,
  early_stopped, diverged, failed), the pid that owns it, step / total steps, the latest
  monitor verdict and message, the config, and once finished a summary (JSON).
- ``training_metrics``: ``(run, name, step) -> value`` for ``train_loss``, ``val_loss``,
  ``lr``, ``tokens_per_s``, ``grad_norm``. A resumed run rewrites the steps after its
  checkpoint, so the series never holds a step twice.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from assistant.storage import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS training_runs (
    run_id TEXT PRIMARY KEY,
    adapter TEXT NOT NULL,
    base TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    finished TEXT,
    pid INTEGER,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL,
    verdict TEXT,
    message TEXT,
    config TEXT NOT NULL,
    data TEXT NOT NULL,
    summary TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS training_runs_adapter ON training_runs (adapter, created);
CREATE TABLE IF NOT EXISTS training_metrics (
    run_id TEXT NOT NULL REFERENCES training_runs (run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, name, step)
);
"""
RUNNING, COMPLETE, EARLY_STOPPED, DIVERGED, FAILED = (
    "running",
    "complete",
    "early_stopped",
    "diverged",
    "failed",
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class TrainingRun:
    run_id: str
    adapter: str
    base: str
    mode: str
    status: str
    created: str
    finished: str | None
    pid: int | None
    step: int
    total_steps: int
    verdict: str | None
    message: str | None
    config: dict[str, Any]
    data: dict[str, Any]
    summary: dict[str, Any] | None
    error: str | None


class TrainingStore(SqliteStore):
    """Open with ``TrainingStore(settings.db_path)``; a context manager, or call ``close()``."""

    SCHEMA = SCHEMA

    # ---- runs ------------------------------------------------------------------------------
    def create_run(
        self,
        adapter: str,
        base: str,
        mode: str,
        total_steps: int,
        config: Mapping[str, Any],
        data: Mapping[str, Any],
        pid: int | None = None,
    ) -> str:
        run_id = uuid.uuid4().hex[:12]
        self.db.execute(
            "INSERT INTO training_runs (run_id, adapter, base, mode, status, created, pid, total_steps,"
            " config,"
            " data) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                adapter,
                base,
                mode,
                RUNNING,
                now(),
                pid,
                total_steps,
                json.dumps(dict(config)),
                json.dumps(dict(data), default=str),
            ),
        )
        return run_id

    def resume_run(self, run_id: str, step: int, pid: int | None) -> None:
        """Mark a run running again from ``step``; drop the metrics its crash left after that step."""
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DELETE FROM training_metrics WHERE run_id = ? AND step > ?", (run_id, step))
        self.db.execute(
            "UPDATE training_runs SET status = ?, pid = ?, step = ?, finished = NULL, error = NULL"
            " WHERE run_id = ?",
            (RUNNING, pid, step, run_id),
        )
        self.db.execute("COMMIT")

    def log_step(
        self,
        run_id: str,
        step: int,
        metrics: Mapping[str, float],
        verdict: str | None = None,
        message: str | None = None,
    ) -> None:
        """One step's metrics (NaN/inf are left out: SQLite has no NaN), the run's progress and
        the monitor's latest verdict, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "INSERT OR REPLACE INTO training_metrics (run_id, name, step, value) VALUES (?,?,?,?)",
            [(run_id, name, step, float(value)) for name, value in metrics.items() if math.isfinite(value)],
        )
        self.db.execute(
            "UPDATE training_runs SET step = ?, verdict = COALESCE(?, verdict),"
            " message = COALESCE(?, message)"
            " WHERE run_id = ?",
            (step, verdict, message, run_id),
        )
        self.db.execute("COMMIT")

    def finish(
        self, run_id: str, status: str, summary: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        self.db.execute(
            "UPDATE training_runs SET status = ?, finished = ?, summary = ?, error = ? WHERE run_id = ?",
            (status, now(), json.dumps(dict(summary), default=str) if summary else None, error, run_id),
        )

    # ---- reading -----------------------------------------------------------------------------
    def _row(self, row: tuple[Any, ...]) -> TrainingRun:
        (
            run_id,
            adapter,
            base,
            mode,
            status,
            created,
            finished,
            pid,
            step,
            total,
            verdict,
            message,
            config,
            data,
            summary,
            error,
        ) = row
        return TrainingRun(
            run_id,
            adapter,
            base,
            mode,
            status,
            created,
            finished,
            pid,
            step,
            total,
            verdict,
            message,
            json.loads(config),
            json.loads(data),
            json.loads(summary) if summary else None,
            error,
        )

    _COLUMNS = (
        "run_id, adapter, base, mode, status, created, finished, pid, step, total_steps, verdict, message,"
        " config, data, summary, error"
    )

    def get_run(self, run_id: str) -> TrainingRun | None:
        row = self.db.execute(
            f"SELECT {self._COLUMNS} FROM training_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return self._row(row) if row else None

    def list_runs(self, adapter: str | None = None, limit: int = 50) -> list[TrainingRun]:
        where, args = ("WHERE adapter = ?", (adapter,)) if adapter else ("", ())
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM training_runs {where} ORDER BY created DESC, rowid DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [self._row(r) for r in rows]

    def series(self, run_id: str, name: str) -> list[tuple[int, float]]:
        rows = self.db.execute(
            "SELECT step, value FROM training_metrics WHERE run_id = ? AND name = ? ORDER BY step",
            (run_id, name),
        ).fetchall()
        return [(int(step), float(value)) for step, value in rows]

    def metric_names(self, run_id: str) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT name FROM training_metrics WHERE run_id = ? ORDER BY name", (run_id,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    def delete_runs(self, adapter: str) -> int:
        return self.db.execute("DELETE FROM training_runs WHERE adapter = ?", (adapter,)).rowcount
