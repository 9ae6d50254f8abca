"""From paths to chunks: which files may be read, reading them safely, and chunking them.

Nothing here writes to a knowledge base. Every problem with one file (outside the allowed
folders, a symlink loop, too big, empty, binary, corrupt, unsupported) becomes a
``FileProblem`` with a reason, so the caller can report it and carry on with the others.
Every path passed over while walking a folder (hidden, of an unsupported type, a symlinked
folder, a file already taken) gets a ``skipped`` row with the reason: nothing is dropped
silently.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.knowledge.chunking import chunk_text
from assistant.knowledge.loaders import SUPPORTED_EXTENSIONS, LoadError, load_bytes

if TYPE_CHECKING:
    from assistant.settings import Settings

# Statuses of a file in an ingest report.
ADDED, REPLACED, UNCHANGED, DUPLICATE, FAILED = "added", "replaced", "unchanged", "duplicate", "failed"
SKIPPED = "skipped"  # passed over on purpose (hidden, unsupported type in a folder, ...): not an error
# A file in one of these states is in the knowledge base after the run.
IN_BASE = (ADDED, REPLACED, UNCHANGED, DUPLICATE)


class FileProblem(Exception):
    """One file cannot be ingested; the message says why and, where it can, how to fix it."""


@dataclass
class FileReport:
    path: str
    status: str
    chunks_added: int = 0
    chunks_removed: int = 0
    reason: str | None = None  # why it failed or was skipped
    pages: int | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAILED


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    # Files inside added folders that were passed over because no loader reads their type.
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.failed]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status == SKIPPED]

    @property
    def in_base(self) -> int:
        """Files that are in the knowledge base after this run (added, replaced or already there)."""
        return sum(1 for f in self.files if f.status in IN_BASE)

    @property
    def chunks_added(self) -> int:
        return sum(f.chunks_added for f in self.files)

    @property
    def chunks_removed(self) -> int:
        return sum(f.chunks_removed for f in self.files)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)


@dataclass(frozen=True)
class Chunk:
    text: str
    number: int  # position in the file, from 0
    page: int | None
    content_hash: str
    record: str | None = None  # the record of a record file (see ``Section.record``)


@dataclass(frozen=True)
class Candidate:
    """A file to ingest: ``source`` is its resolved path, the identity used in the store."""

    shown: str  # the path as the user gave it (or as found inside a given folder)
    source: Path
    suffix: str  # the type to read it as: the link's own when a symlink names the type


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def allowed_roots(settings: Settings) -> list[Path]:
    if settings.allowed_roots:
        roots = [p for p in settings.allowed_roots.split(os.pathsep) if p.strip()]
        return [Path(p).expanduser().resolve() for p in roots]
    return [Path.cwd().resolve(), Path.home().resolve()]


def resolve(path: Path) -> Path:
    """The real path, with a plain reason when there is none."""
    try:
        return path.expanduser().resolve(strict=True)
    except RuntimeError as exc:  # Python < 3.13 reports a symlink loop as RuntimeError
        raise FileProblem(f"symlink loop ({exc})") from None
    except FileNotFoundError:
        if path.is_symlink():
            raise FileProblem("broken symlink: its target does not exist") from None
        raise FileProblem("no such file or folder") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileProblem("symlink loop") from None
        raise FileProblem(f"cannot resolve the path: {exc.strerror or exc}") from None


def check_allowed(real: Path, roots: Sequence[Path]) -> None:
    if not any(real.is_relative_to(root) for root in roots):
        shown = os.pathsep.join(str(r) for r in roots)
        raise FileProblem(
            f"outside the allowed folders ({shown}); add its folder to the allowed_roots setting "
            "(LADDER_ALLOWED_ROOTS) to ingest it"
        )


def _symlinked_folder(path: Path, folder: Path) -> str:
    """Why a symlinked folder met while walking is not followed."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "symlink loop; not followed"
    if folder.resolve().is_relative_to(target):
        return f"symlink loop: points back to {target}; not followed"
    return "symlinked folder: not followed (name it directly to ingest it)"


def collect(
    paths: Sequence[Path | str], settings: Settings
) -> tuple[list[Candidate], list[FileReport], list[str]]:
    """Expand folders and check every path: files to read, rows for the others, ignored files.

    The rows are failures (``FAILED``: a named path that is missing, outside the allowed
    folders, a symlink loop, of an unsupported type; a folder that cannot be listed) and skips
    (``SKIPPED``, inside walked folders: hidden entries, files of unsupported types, symlinked
    folders, which are not followed so a walk cannot loop; and a file already taken). The
    files of unsupported types are also returned as ``ignored``.
    """
    roots = allowed_roots(settings)
    candidates: list[Candidate] = []
    rows: list[FileReport] = []
    ignored: list[str] = []
    seen: dict[Path, str] = {}

    def skip(shown: str, reason: str) -> None:
        rows.append(FileReport(shown, SKIPPED, reason=reason))

    def take(shown: str, path: Path, named: bool) -> None:
        try:
            real = resolve(path)
            check_allowed(real, roots)
            suffix = next(
                (s.lower() for s in (real.suffix, path.suffix) if s.lower() in SUPPORTED_EXTENSIONS), ""
            )
            if not suffix:
                unsupported = f"unsupported file type {real.suffix or '(no extension)'}"
                if not named:
                    ignored.append(shown)
                    skip(shown, unsupported)
                    return
                raise FileProblem(f"{unsupported}; supported: {' '.join(SUPPORTED_EXTENSIONS)}")
        except FileProblem as exc:
            rows.append(FileReport(shown, FAILED, reason=str(exc)))
            return
        if real in seen:
            skip(shown, f"the same file as {seen[real]}, already in this run")
            return
        seen[real] = shown
        candidates.append(Candidate(shown, real, suffix))

    def unreadable(error: OSError, real: Path, shown: str) -> None:
        # Without this os.walk passes over a folder it cannot list without a word.
        where = os.path.normpath(os.path.join(shown, os.path.relpath(error.filename, real)))
        reason = f"cannot list the folder: {error.strerror or error}"
        rows.append(FileReport(where if error.filename else shown, FAILED, reason=reason))

    for raw in paths:
        path = Path(raw)
        shown = str(raw)
        try:
            real = resolve(path)
            check_allowed(real, roots)
        except FileProblem as exc:
            rows.append(FileReport(shown, FAILED, reason=str(exc)))
            continue
        if not real.is_dir():
            take(shown, path, named=True)
            continue
        on_error = functools.partial(unreadable, real=real, shown=shown)
        for folder, subfolders, files in os.walk(real, onerror=on_error, followlinks=False):
            # Shown as the user named the folder, not as its resolved path.
            shown_folder = os.path.normpath(os.path.join(shown, os.path.relpath(folder, real)))
            walked = []
            for name in sorted(subfolders):
                where = os.path.join(shown_folder, name)
                if name.startswith("."):
                    skip(where, "hidden folder: not walked (name it directly to ingest it)")
                elif os.path.islink(os.path.join(folder, name)):
                    skip(where, _symlinked_folder(Path(folder) / name, Path(folder)))
                else:
                    walked.append(name)
            subfolders[:] = walked
            for name in sorted(files):
                if name.startswith("."):
                    skip(os.path.join(shown_folder, name), "hidden file (name it directly to ingest it)")
                else:
                    take(os.path.join(shown_folder, name), Path(folder) / name, named=False)
    return candidates, rows, ignored


def read_file(path: Path, max_mb: float) -> bytes:
    """The bytes of a regular file under the size limit."""
    try:
        info = path.stat()
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileProblem("not a regular file")
    limit = max_mb * 1024 * 1024
    if info.st_size > limit:
        raise FileProblem(
            f"too large: {info.st_size / 1024 / 1024:.1f} MB is over the max_file_mb limit of {max_mb:g} MB "
            "(raise max_file_mb, LADDER_MAX_FILE_MB, to ingest it)"
        )
    if info.st_size == 0:
        raise FileProblem("the file is empty")
    try:
        with path.open("rb") as handle:
            return handle.read(int(limit) + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror or exc}") from None


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_file(data: bytes, suffix: str, size: int, overlap: int) -> tuple[list[Chunk], int | None]:
    """The chunks of a file (identical chunks kept once) and its page count (PDF only).

    Each section (a PDF page, a record of a JSONL or CSV file) is chunked on its own, so no
    chunk mixes two pages or two records.
    """
    try:
        sections = load_bytes(data, suffix)
    except LoadError as exc:
        raise FileProblem(str(exc)) from None
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for section in sections:
        for text in chunk_text(section.text, size, overlap):
            digest = content_hash(text)
            if digest in seen:  # repeated boilerplate (headers, footers) adds nothing to search
                continue
            seen.add(digest)
            chunks.append(Chunk(text, len(chunks), section.page, digest, section.record))
    if not chunks:
        raise FileProblem("no text found in the file")
    pages = len(sections) if any(s.page is not None for s in sections) else None
    return chunks, pages


__all__ = [
    "ADDED",
    "DUPLICATE",
    "FAILED",
    "IN_BASE",
    "REPLACED",
    "SKIPPED",
    "UNCHANGED",
    "Candidate",
    "Chunk",
    "FileProblem",
    "FileReport",
    "IngestReport",
    "allowed_roots",
    "chunk_file",
    "collect",
    "file_hash",
    "read_file",
]
