"""Changing a knowledge base's stores: adding files, and rebuilding the index after a crash.

The order of writes is what keeps a knowledge base whole (see ``assistant.knowledge.kb``):
each file's chunks go into Chroma in full or not at all; the BM25 index and the manifest
are saved once per batch, as one new generation; chunks that a changed file replaces are
deleted only after that save.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.errors import BackendError
from assistant.knowledge.ingest import (
    ADDED,
    DUPLICATE,
    FAILED,
    REPLACED,
    UNCHANGED,
    Candidate,
    Chunk,
    FileProblem,
    FileReport,
    IngestReport,
    chunk_file,
    file_hash,
    read_file,
)
from assistant.knowledge.loaders import RECORD_EXTENSIONS
from assistant.knowledge.store import tokenize
from assistant.progress import Progress

if TYPE_CHECKING:
    import numpy as np

    from assistant.knowledge.index import KnowledgeIndex

WRITE_BATCH = 1000  # chunks per Chroma write


@dataclass
class Pending:
    """A file read and chunked, waiting for its embeddings and its write."""

    candidate: Candidate
    report: FileReport
    digest: str
    size: int
    chunks: list[Chunk]
    tokens: list[list[str]]
    pages: int | None
    old_ids: list[str]  # the chunks of the previous version, when the file changed


# Record files (JSONL, CSV) are chunked one record at a time since "records" was added: a file
# added before, whose records were joined and so shared chunks, counts as changed and is
# chunked again when it is added again.


def chunking(kb: KnowledgeIndex, source: str) -> str:
    """How ``source`` is chunked: size/overlap, plus the record rule for record files."""
    rule = f"{kb.settings.chunk_size}/{kb.settings.chunk_overlap}"
    return rule + "/records" if source.lower().endswith(RECORD_EXTENSIONS) else rule


def chunk_id(source: str, version: str, number: int) -> str:
    return f"{hashlib.sha256(source.encode()).hexdigest()[:16]}-{version}-{number:05d}"


def read_all(
    kb: KnowledgeIndex, candidates: list[Candidate], report: IngestReport, progress: Progress
) -> list[Pending]:
    """Read and chunk every file that is new or changed; report the others."""
    size, overlap = kb.settings.chunk_size, kb.settings.chunk_overlap
    by_hash = {entry["file_hash"]: source for source, entry in kb.manifest.items()}
    pending: list[Pending] = []
    if candidates:
        progress.start("reading files", total=len(candidates), unit="files")
    for candidate in candidates:
        source = str(candidate.source)
        file_report = FileReport(candidate.shown, FAILED)
        report.files.append(file_report)
        try:
            data = read_file(candidate.source, kb.settings.max_file_mb)
            digest = file_hash(data)
            old = kb.manifest.get(source)
            if old and old["file_hash"] == digest and old["chunking"] == chunking(kb, source):
                file_report.status, file_report.reason = UNCHANGED, "already in the knowledge base"
            elif by_hash.get(digest, source) != source:
                file_report.status, file_report.reason = DUPLICATE, f"same content as {by_hash[digest]}"
            else:
                chunks, pages = chunk_file(data, candidate.suffix, size, overlap)
                by_hash[digest] = source
                file_report.pages = pages
                tokens = [tokenize(c.text) for c in chunks]
                old_ids = list(old["chunk_ids"]) if old else []
                pending.append(
                    Pending(candidate, file_report, digest, len(data), chunks, tokens, pages, old_ids)
                )
        except FileProblem as exc:
            file_report.reason = str(exc)
        progress.advance()
    return pending


def write_all(kb: KnowledgeIndex, pending: list[Pending], vectors: np.ndarray) -> None:
    """Write each file (a failed write fails that file only), then save the index once."""
    added: dict[str, list[str]] = {}
    written: list[str] = []
    replaced: list[str] = []
    offset = 0
    for item in pending:
        source = str(item.candidate.source)
        version = hashlib.sha256(f"{item.digest}:{chunking(kb, source)}".encode()).hexdigest()[:12]
        now = time.time()
        ids = [chunk_id(source, version, c.number) for c in item.chunks]
        file_meta = {
            "source": source,
            "file_hash": item.digest,
            "version": version,
            "chunking": chunking(kb, source),
            "size_bytes": item.size,
            "added_at": now,
        }
        if item.pages is not None:
            file_meta["pages"] = item.pages
        metadatas = [
            {
                **file_meta,
                "chunk": c.number,
                "content_hash": c.content_hash,
                **({"page": c.page} if c.page is not None else {}),
            }
            for c in item.chunks
        ]
        embeddings = vectors[offset : offset + len(ids)]
        offset += len(ids)
        try:
            write_file(kb, ids, embeddings, [c.text for c in item.chunks], metadatas)
        except BackendError:
            raise  # the store stopped answering (exit 5); the next open rebuilds from what reached it
        except Exception as exc:
            item.report.status = FAILED
            item.report.reason = (
                f"could not write to the store ({type(exc).__name__}: {exc}); nothing was kept"
            )
            continue
        written.extend(ids)
        added.update(zip(ids, item.tokens, strict=True))
        replaced.extend(item.old_ids)
        item.report.status = REPLACED if item.old_ids else ADDED
        item.report.chunks_added, item.report.chunks_removed = len(ids), len(item.old_ids)
        kb.manifest[source] = {
            "file_hash": item.digest,
            "chunking": chunking(kb, source),
            "chunk_ids": ids,
            "size_bytes": item.size,
            "pages": item.pages,
            "added_at": now,
        }
    if not written:
        return
    try:
        kb.save_index(added, replaced)
    except BaseException:
        kb.collection.delete(ids=written)
        kb.manifest = kb.load_manifest()
        raise
    if replaced:
        kb.collection.delete(ids=replaced)


def write_file(
    kb: KnowledgeIndex,
    ids: list[str],
    embeddings: np.ndarray,
    documents: list[str],
    metadatas: list[dict[str, Any]],
) -> None:
    """All of one file's chunks into Chroma, or none of them."""
    collection = kb.collection
    step = max(1, min(WRITE_BATCH, kb.client.get_max_batch_size()))
    try:
        for start in range(0, len(ids), step):
            end = start + step
            collection.add(
                ids=ids[start:end],
                embeddings=embeddings[start:end],
                documents=documents[start:end],
                metadatas=metadatas[start:end],
            )
    except BaseException:
        with contextlib.suppress(Exception):
            collection.delete(ids=ids)
        raise


def resync(kb: KnowledgeIndex) -> None:
    """Rebuild the BM25 index and manifest from what Chroma holds."""
    stored = kb.collection.get(include=["documents", "metadatas"])
    metadatas = stored["metadatas"]
    versions: dict[str, dict[str, list[int]]] = {}
    for row, meta in enumerate(metadatas):
        versions.setdefault(str(meta["source"]), {}).setdefault(str(meta["version"]), []).append(row)
    manifest: dict[str, dict[str, Any]] = {}
    tokens: dict[str, list[str]] = {}
    stale: list[str] = []
    for source, by_version in versions.items():
        # A replace that died half-way leaves two versions of a file: keep the newest.
        newest = max(by_version, key=lambda v: metadatas[by_version[v][0]]["added_at"])
        for version, rows in by_version.items():
            if version != newest:
                stale.extend(stored["ids"][row] for row in rows)
                continue
            rows.sort(key=lambda row: metadatas[row]["chunk"])
            first = metadatas[rows[0]]
            manifest[source] = {
                "file_hash": first["file_hash"],
                "chunking": first["chunking"],
                "chunk_ids": [stored["ids"][row] for row in rows],
                "size_bytes": first["size_bytes"],
                "pages": first.get("pages"),
                "added_at": first["added_at"],
            }
            for row in rows:
                tokens[stored["ids"][row]] = tokenize(stored["documents"][row])
    if stale:
        kb.collection.delete(ids=stale)
    kb.manifest = manifest
    kb.save_index(tokens, list(kb.bm25.ids))


__all__ = ["Pending", "chunk_id", "read_all", "resync", "write_all", "write_file"]
