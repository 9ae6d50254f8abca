"""Storage every floor shares: ``write_atomic`` for files readers may open at any moment, and
``SqliteStore``, the one way Ladder opens ``ladder.db``: WAL, a 30 s busy timeout, foreign
keys, autocommit with explicit ``BEGIN IMMEDIATE`` transactions, and each store's
``CREATE ... IF NOT EXISTS`` schema. Evaluation runs, training runs, decisions and feedback
share the file."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self


def feed_file(digest: Any, path: Path) -> None:
    """Add a file's bytes to a ``hashlib`` digest, a megabyte at a time (never the whole file)."""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    feed_file(digest, path)
    return digest.hexdigest()


def replace_folder(tmp: Path, final: Path) -> Path:
    """Move a finished folder ``tmp`` into place as ``final``: an older ``final`` is moved aside
    first (``.<name>.old-<pid>``, a dot-folder that listings skip) and removed only once the new
    one is in place, so ``final`` is never half-written and never missing for long."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class SqliteStore:
    """Subclasses set ``SCHEMA``; open with ``Store(path)``, as a context manager or ``close()``."""

    SCHEMA: ClassVar[str] = ""

    def __init__(self, path: Path | str, *, any_thread: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode; transactions are explicit (``transaction()``). ``any_thread``: every
        # call is one statement or one transaction, which sqlite3 serialises across threads.
        self.db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=not any_thread
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(self.SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """An IMMEDIATE transaction: concurrent writers are serialised, not interleaved."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
