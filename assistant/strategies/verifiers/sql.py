"""The ``sql`` verifier (the reply's query runs on a SQLite database) and the read-only SQLite
helpers it shares with the agent's ``sql_query`` tool."""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from assistant.errors import ConfigError
from assistant.strategies.verifiers.base import Verdict, VerifierOptions
from assistant.strategies.verifiers.extract import fenced_blocks
from assistant.types import Question

_SQL_START = re.compile(r"\b(SELECT|WITH)\b", re.IGNORECASE)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass
class SqlResult:
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None

    def preview(self, limit: int = 10) -> str:
        if self.error:
            return f"SQLite error: {self.error}"
        head = " | ".join(self.columns)
        lines = [" | ".join(_cell(v) for v in row) for row in self.rows[:limit]]
        more = len(self.rows) > limit or self.truncated
        summary = f"{len(self.rows)}{'+' if self.truncated else ''} row(s)"
        return "\n".join([summary, head, *lines, *(["..."] if more else [])])


def _cell(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def json_safe_rows(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [[v.hex() if isinstance(v, bytes) else v for v in row] for row in rows]


def extract_sql(text: str) -> str:
    """The query in a reply: a ```sql fence, else from the first SELECT/WITH on."""
    blocks = fenced_blocks(text, ("sql", "sqlite"))
    if blocks:
        return blocks[0].strip().rstrip(";").strip()
    match = _SQL_START.search(text)
    if match is None:
        return text.strip().rstrip(";").strip()
    query = text[match.start() :]
    # Prose after the query: stop at the first semicolon or blank line.
    query = re.split(r";|\n\s*\n", query, maxsplit=1)[0]
    return query.strip()


def check_database(database: str | None) -> Path:
    if not database:
        raise ConfigError("an SQL check needs `database`: the path of a SQLite file")
    path = Path(database).expanduser()
    if not path.is_file():
        raise ConfigError(f"SQLite database not found: {path}")
    return path


def _connect_readonly(path: Path) -> sqlite3.Connection:
    # mode=ro makes SQLite itself refuse writes; query_only also covers WITH ... DELETE.
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
    connection.execute("PRAGMA query_only = ON")
    return connection


def database_schema(database: str | Path) -> str:
    """The CREATE statements of the tables and views, for feedback and tool observations."""
    try:
        with closing(_connect_readonly(Path(database))) as connection:
            rows = connection.execute(
                "SELECT sql FROM sqlite_master WHERE type IN ('table', 'view') AND sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
    except sqlite3.Error as exc:
        return f"(schema unavailable: {exc})"
    return ";\n".join(row[0] for row in rows) + ";" if rows else "(no tables)"


def run_readonly_sql(database: str | Path, sql: str, timeout_s: float = 2.0, max_rows: int = 20) -> SqlResult:
    """Run one SELECT/WITH statement read-only; errors come back in ``SqlResult.error``."""
    first_word = _SQL_COMMENT.sub(" ", sql).strip().split(None, 1)[:1]
    if not first_word or first_word[0].upper() not in {"SELECT", "WITH"}:
        shown = first_word[0] if first_word else "an empty query"
        return SqlResult(error=f"only SELECT or WITH queries are allowed, got {shown}")
    try:
        connection = _connect_readonly(Path(database))
    except sqlite3.Error as exc:
        return SqlResult(error=str(exc))
    deadline = time.monotonic() + timeout_s
    # A non-zero return aborts the statement: the time limit for runaway queries.
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        cursor = connection.execute(sql)
        rows = cursor.fetchmany(max_rows + 1)
        columns = [d[0] for d in cursor.description or []]
        return SqlResult(columns, [tuple(r) for r in rows[:max_rows]], truncated=len(rows) > max_rows)
    except sqlite3.OperationalError as exc:
        if time.monotonic() > deadline and "interrupt" in str(exc):
            return SqlResult(error=f"the query exceeded the time limit of {timeout_s:g} s")
        return SqlResult(error=str(exc))
    except (sqlite3.Error, OverflowError) as exc:
        return SqlResult(error=str(exc))
    finally:
        connection.close()


class SqlVerifier:
    name: ClassVar[str] = "sql"

    def __init__(self, options: VerifierOptions) -> None:
        self.database = check_database(options.database)
        if options.timeout_s <= 0:
            raise ConfigError(f"sql timeout_s must be > 0, got {options.timeout_s}")
        self.timeout_s = options.timeout_s
        self.max_rows = options.max_rows
        self._schema: str | None = None

    @property
    def schema(self) -> str:
        if self._schema is None:
            self._schema = database_schema(self.database)
        return self._schema

    def check(self, answer_text: str, question: Question) -> Verdict:
        query = extract_sql(answer_text)
        result = run_readonly_sql(self.database, query, self.timeout_s, self.max_rows)
        if result.error is not None:
            return Verdict(False, f"SQLite error: {result.error}\nQuery: {query}\n"
                                  f"Database schema:\n{self.schema}\nFix the query.")  # fmt: skip
        return Verdict(True, f"The query ran. Result: {result.preview()}", fixed=query, rows=result.rows)
