"""The run store: evaluation runs, their item records, and the answer/judge caches, in SQLite.

One file, ``LADDER_HOME/ladder.db``, in WAL mode so a reader (``ladder runs list``, the UI)
never blocks a running evaluation. All SQL for runs lives here.

Durability is what makes resume work: the runner writes each batch's cache entries and
records in one transaction, so a process killed with ``kill -9`` leaves either the whole
batch or none of it. ``records`` has the primary key (run, strategy, item), so a resumed run
can never write an item twice.

- ``runs``: one row per ``ladder eval``: status (running/complete/failed), the ``run_key``
  a resume matches on, the pid of the process that owns it, and once finished the summary
  (a ``RunResult`` without records, as JSON).
- ``records``: one ``ItemRecord`` (JSON) per strategy and item, with the order it was written.
- ``answer_cache``: a strategy's answer to an item, keyed by the hash of (strategy config,
  model, item, generation settings); shared by every run, so an unchanged re-run calls no model.
- ``judge_cache``: a judged metric's score, keyed by (answer key, judge, metric).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import LadderError
from assistant.storage import SqliteStore
from evaluation.results import COMPLETE, FAILED, RUNNING, ItemRecord, ItemScore, RunResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    run_key TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_path TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    finished TEXT,
    model TEXT,
    judge TEXT,
    mode TEXT,
    strategies TEXT NOT NULL,
    pid INTEGER,
    summary TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_key ON runs (run_key, status);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    strategy TEXT NOT NULL,
    item_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, strategy, item_id)
);
CREATE TABLE IF NOT EXISTS answer_cache (
    cache_key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS judge_cache (
    cache_key TEXT NOT NULL,
    judge TEXT NOT NULL,
    metric TEXT NOT NULL,
    score TEXT NOT NULL,
    PRIMARY KEY (cache_key, judge, metric)
);
"""


class RunNotFound(LadderError):
    exit_code = 2


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0): look closer.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return state not in "ZX"


class RunStore(SqliteStore):
    """Open with ``RunStore(path)``; use as a context manager or call ``close()``."""

    SCHEMA = SCHEMA

    # ---- runs --------------------------------------------------------------------------------
    def create_run(self, run: RunResult, run_key: str) -> None:
        strategies = [
            {"strategy": s.strategy, "config": s.config, "config_hash": s.config_hash} for s in run.strategies
        ]
        with self.transaction():
            self.db.execute(
                "INSERT INTO runs (run_id, run_key, suite, suite_path, kind, status, created, model, judge,"
                " mode, strategies, pid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.run_id,
                    run_key,
                    run.suite,
                    run.suite_path,
                    run.kind,
                    RUNNING,
                    run.created,
                    run.model,
                    run.judge,
                    run.mode,
                    json.dumps(strategies, ensure_ascii=False),
                    os.getpid(),
                ),
            )

    def resumable_run(self, run_key: str) -> str | None:
        """The newest unfinished run with this key whose process is gone (killed or crashed)."""
        rows = self.db.execute(
            "SELECT run_id, pid FROM runs WHERE run_key = ? AND status != ? ORDER BY created DESC",
            (run_key, COMPLETE),
        ).fetchall()
        for run_id, pid in rows:
            if not _pid_alive(pid):
                return str(run_id)
        return None

    def claim_run(self, run_id: str) -> None:
        """Take over an unfinished run: it is ours (this pid) and running again."""
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET pid = ?, status = ?, error = NULL WHERE run_id = ?",
                (os.getpid(), RUNNING, run_id),
            )

    def finish_run(self, run: RunResult) -> None:
        """Store the summary (the run without its records) and the final status."""
        summary = run.to_dict()
        summary["records"] = []
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET status = ?, finished = ?, summary = ?, error = ?, pid = NULL"
                " WHERE run_id = ?",
                (run.status, run.finished, json.dumps(summary, ensure_ascii=False), run.error, run.run_id),
            )

    def fail_run(self, run_id: str, error: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET status = ?, finished = ?, error = ?, pid = NULL WHERE run_id = ?",
                (FAILED, now(), error, run_id),
            )

    def resolve(self, ref: str) -> str:
        """A run id from a full id, a unique prefix, ``latest`` or ``latest~N``."""
        if ref == "latest" or ref.startswith("latest~"):
            offset = int(ref.partition("~")[2] or 0)
            row = self.db.execute(
                "SELECT run_id FROM runs ORDER BY created DESC, rowid DESC LIMIT 1 OFFSET ?", (offset,)
            ).fetchone()
            if row is None:
                raise RunNotFound(f"no run {ref!r}", hint="ladder runs list")
            return str(row[0])
        rows = self.db.execute("SELECT run_id FROM runs WHERE run_id LIKE ?", (ref + "%",)).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise RunNotFound(f"no run {ref!r}", hint="ladder runs list")
        raise RunNotFound(f"{ref!r} matches {len(rows)} runs", hint="give more characters of the id")

    def list_runs(self, limit: int = 20, suite: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT run_id, suite, kind, status, created, finished, model, judge, mode, strategies, summary"
            " FROM runs"
        )
        args: list[Any] = []
        if suite:
            sql += " WHERE suite = ?"
            args.append(suite)
        sql += " ORDER BY created DESC, rowid DESC LIMIT ?"
        args.append(limit)
        out = []
        for row in self.db.execute(sql, args).fetchall():
            run_id, suite_name, kind, status, created, finished, model, judge, mode, strategies, summary = row
            done = self.db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (run_id,)).fetchone()[0]
            out.append(
                {
                    "run_id": run_id,
                    "suite": suite_name,
                    "kind": kind,
                    "status": status,
                    "created": created,
                    "finished": finished,
                    "model": model,
                    "judge": judge,
                    "mode": mode,
                    "strategies": [s["strategy"] for s in json.loads(strategies)],
                    "records": done,
                    "summary": json.loads(summary) if summary else None,
                }
            )
        return out

    def load_run(self, ref: str, with_records: bool = True) -> RunResult:
        """A run as a ``RunResult``; an unfinished one has its records but no summary."""
        run_id = self.resolve(ref)
        row = self.db.execute(
            "SELECT suite, suite_path, kind, status, created, finished, model, judge, mode, summary, error"
            " FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        suite, suite_path, kind, status, created, finished, model, judge, mode, summary, error = row
        if summary:
            run = RunResult.from_dict(json.loads(summary))
            run.status, run.error = status, error
        else:
            run = RunResult(
                run_id,
                suite,
                suite_path,
                kind,
                status,
                created,
                finished,
                model or "",
                judge,
                mode or "generate",
                error=error,
            )
        if with_records:
            run.records = self.records(run_id)
        return run

    def delete_run(self, ref: str) -> str:
        run_id = self.resolve(ref)
        with self.transaction():
            self.db.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            self.db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        return run_id

    # ---- records -----------------------------------------------------------------------------
    def records(self, run_id: str, strategy: str | None = None) -> list[ItemRecord]:
        sql, args = "SELECT record FROM records WHERE run_id = ?", [run_id]
        if strategy is not None:
            sql += " AND strategy = ?"
            args.append(strategy)
        rows = self.db.execute(sql + " ORDER BY seq", args).fetchall()
        return [ItemRecord.from_dict(json.loads(r[0])) for r in rows]

    def done_items(self, run_id: str, strategy: str) -> set[str]:
        rows = self.db.execute(
            "SELECT item_id FROM records WHERE run_id = ? AND strategy = ?", (run_id, strategy)
        ).fetchall()
        return {r[0] for r in rows}

    def add_records(self, run_id: str, records: Sequence[ItemRecord], seqs: Sequence[int]) -> None:
        """Insert records in one transaction (the caller's, if one is open)."""
        self.db.executemany(
            "INSERT INTO records (run_id, strategy, item_id, seq, record) VALUES (?,?,?,?,?)",
            [
                (run_id, r.strategy, r.item_id, seq, json.dumps(r.to_dict(), ensure_ascii=False, default=str))
                for r, seq in zip(records, seqs, strict=True)
            ],
        )

    # ---- caches ------------------------------------------------------------------------------
    def cached_answers(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, answer in self.db.execute(
                f"SELECT cache_key, answer FROM answer_cache WHERE cache_key IN ({marks})", chunk
            ):
                out[key] = json.loads(answer)
        return out

    def put_answers(self, answers: dict[str, dict[str, Any]]) -> None:
        created = now()
        self.db.executemany(
            "INSERT OR REPLACE INTO answer_cache (cache_key, answer, created) VALUES (?,?,?)",
            [
                (key, json.dumps(value, ensure_ascii=False, default=str), created)
                for key, value in answers.items()
            ],
        )

    def cached_judgements(self, keys: Iterable[str], judge: str, metric: str) -> dict[str, ItemScore]:
        out: dict[str, ItemScore] = {}
        for key in keys:
            row = self.db.execute(
                "SELECT score FROM judge_cache WHERE cache_key = ? AND judge = ? AND metric = ?",
                (key, judge, metric),
            ).fetchone()
            if row is not None:
                out[key] = ItemScore(**json.loads(row[0]))
        return out

    def put_judgements(self, scores: dict[str, ItemScore], judge: str, metric: str) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO judge_cache (cache_key, judge, metric, score) VALUES (?,?,?,?)",
            [
                (key, judge, metric, json.dumps(asdict(score), ensure_ascii=False))
                for key, score in scores.items()
            ],
        )

    def clear_cache(self) -> tuple[int, int]:
        with self.transaction():
            answers = self.db.execute("DELETE FROM answer_cache").rowcount
            judged = self.db.execute("DELETE FROM judge_cache").rowcount
        return answers, judged


def new_run_id() -> str:
    """Sortable by time, unique: ``20261122-143005-3f9a1c``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
