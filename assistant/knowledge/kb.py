"""``KnowledgeBase``: a named collection of documents under ``LADDER_HOME/kb/<name>/``.

Layout of one knowledge base::

    kb.json          name, creation time, the embedding model it was built with, and its store:
                     embedded, or a collection on a Chroma server (``chroma_server.py``)
    chroma/          embedded store: Chroma PersistentClient with chunk text, metadata, embeddings
    bm25/CURRENT     the live BM25 generation; bm25/gen-N/ holds the index, every chunk's
                     tokens and the sources manifest (source -> file hash, chunk ids, ...)
    .lock            held while a process changes the knowledge base

Chroma is the record of truth. A file's chunks go into Chroma only after the whole file
parsed and embedded, and are rolled back if that write fails. The BM25 index and the
manifest are then saved as one new generation; chunks a changed file replaces are deleted
last. If a process dies in between, the next open sees that Chroma and the BM25 index
disagree and rebuilds the index and manifest from Chroma.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import LadderError
from assistant.knowledge import retrieve, writer
from assistant.knowledge.embeddings import (
    embedding_model,
    model_languages,
    model_prompts,
)
from assistant.knowledge.index import EmbeddingModelMismatch, KnowledgeIndex, kb_folder
from assistant.knowledge.ingest import IngestReport, collect
from assistant.knowledge.retrieve import Hit
from assistant.knowledge.store import EMBEDDED, drop_store, new_store_record, store_kind
from assistant.progress import NullProgress, Progress
from assistant.storage import write_atomic

if TYPE_CHECKING:
    from assistant.settings import Settings

FORMAT = 1


class KnowledgeBaseNotFound(LadderError):
    exit_code = 3


class KnowledgeBaseExists(LadderError):
    pass


class IngestFailed(LadderError):
    """Some files could not be ingested (the others were)."""

    exit_code = 1


@dataclass
class SourceInfo:
    source: str
    chunks: int
    file_hash: str
    size_bytes: int
    pages: int | None
    added_at: float  # seconds since the epoch
    chunking: str  # "size/overlap" the file was chunked with


class KnowledgeBase(KnowledgeIndex):
    """Open one with ``KnowledgeBase.open(name, settings)`` or ``KnowledgeBase.create``."""

    # ---- lifecycle ----------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, settings: Settings) -> KnowledgeBase:
        folder = kb_folder(name, settings)
        if (folder / "kb.json").exists():
            raise KnowledgeBaseExists(
                f"knowledge base {name!r} already exists", hint=f"use it, or `ladder kb delete {name}` first"
            )
        identity, path = embedding_model(settings)
        meta = {
            "format": FORMAT,
            "name": name,
            "created_at": time.time(),
            "embedding_model": identity,
            "embedding_model_path": str(path),
            "embedding_dim": None,
            "embedding_languages": model_languages(path),
            "embedding_prompts": model_prompts(path),
            "store": new_store_record(name, settings.kb_store),
        }
        kb = cls(name, settings, meta)
        if store_kind(meta) != EMBEDDED:
            # The server's collection first: an unreachable server or a refused token leaves no
            # kb.json behind that names a collection the server does not have.
            kb.collection  # noqa: B018
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "kb.json", json.dumps(meta, indent=2))
        return kb

    @classmethod
    def open(cls, name: str, settings: Settings) -> KnowledgeBase:
        path = kb_folder(name, settings) / "kb.json"
        if not path.is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}", hint=f"ladder kb create {name}"
            )
        kb = cls(name, settings, json.loads(path.read_text(encoding="utf-8")))
        kb._ensure_consistent()
        return kb

    @classmethod
    def summary(cls, name: str, settings: Settings) -> dict[str, Any]:
        """Counts and model of a knowledge base, without opening Chroma (for listings)."""
        path = kb_folder(name, settings) / "kb.json"
        if not path.is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}", hint=f"ladder kb create {name}"
            )
        kb = cls(name, settings, json.loads(path.read_text(encoding="utf-8")))
        return {
            "name": name,
            "sources": len(kb.manifest),
            "chunks": len(kb.bm25.ids),
            "embedding_model": kb.meta["embedding_model"],
            "created_at": kb.meta["created_at"],
        }

    @classmethod
    def fingerprint(cls, name: str, settings: Settings) -> str:
        """A hash of everything retrieval results depend on: the model, the sources and their
        chunking, and the reranker. Evaluation caches key RAG answers by it, so adding or
        removing a document invalidates them."""
        import hashlib

        path = kb_folder(name, settings) / "kb.json"
        if not path.is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}", hint=f"ladder kb create {name}"
            )
        kb = cls(name, settings, json.loads(path.read_text(encoding="utf-8")))
        sources = {s: (e["file_hash"], e["chunking"]) for s, e in kb.manifest.items()}
        # "llm" reranks with the configured model: the cache must see which one.
        reranker = f"llm:{settings.model}" if settings.reranker_model == "llm" else settings.reranker_model
        text = json.dumps([kb.meta.get("embedding_model"), sources, reranker], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @staticmethod
    def list_all(settings: Settings) -> list[str]:
        if not settings.kb_dir.is_dir():
            return []
        return sorted(p.parent.name for p in settings.kb_dir.glob("*/kb.json"))

    @staticmethod
    def delete(name: str, settings: Settings) -> None:
        folder = kb_folder(name, settings)
        if not (folder / "kb.json").is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}",
                hint="`ladder kb list` shows the knowledge bases",
            )
        # The vectors first: a server that cannot be reached keeps the knowledge base whole.
        drop_store(folder, json.loads((folder / "kb.json").read_text(encoding="utf-8")), settings)
        shutil.rmtree(folder)

    # ---- internals ----------------------------------------------------------------------

    def _ensure_consistent(self) -> None:
        """Rebuild the BM25 index and manifest from Chroma when a crash left them behind."""
        if self._consistent():
            return
        with self.writing():
            # Checked again under the lock: another process may have been half-way through a
            # write (its chunks in Chroma, its index not saved yet) and has finished since.
            if not self._consistent():
                writer.resync(self)

    def _consistent(self) -> bool:
        indexed = sum(len(entry["chunk_ids"]) for entry in self.manifest.values())
        return bool(self.collection.count() == len(self.bm25.ids) == indexed)

    # ---- adding and removing --------------------------------------------------------------
    def add(self, paths: Sequence[Path | str], progress: Progress | None = None) -> IngestReport:
        """Ingest files and folders; one ``FileReport`` per file, failures included."""
        progress = progress or NullProgress()
        started = time.perf_counter()
        self.model_path()
        with self.writing():
            candidates, problems, ignored = collect(paths, self.settings)
            report = IngestReport(files=list(problems), ignored=ignored)
            pending = writer.read_all(self, candidates, report, progress)
            total = sum(len(p.chunks) for p in pending)
            if total:
                progress.start("embedding chunks", total=total, unit="chunks")
            vectors = self.embed([c.text for p in pending for c in p.chunks], progress)
            writer.write_all(self, pending, vectors)
        report.seconds = time.perf_counter() - started
        return report

    def _match_sources(self, path: Path | str) -> list[str]:
        raw = str(path)
        keys = {raw}
        with contextlib.suppress(OSError, RuntimeError):
            keys.add(str(Path(raw).expanduser().resolve()))
        keys.add(str(Path(raw).expanduser().absolute()))
        exact = [k for k in keys if k in self.manifest]
        if exact:
            return exact
        # A folder: every source under it.
        prefixes = tuple(k.rstrip(os.sep) + os.sep for k in keys)
        return [source for source in self.manifest if source.startswith(prefixes)]

    def remove_source(self, path: Path | str) -> int:
        """Remove a file (or every file under a folder); returns the number of chunks removed."""
        with self.writing():
            sources = self._match_sources(path)
            ids = [chunk_id for source in sources for chunk_id in self.manifest[source]["chunk_ids"]]
            if not sources:
                return 0
            # Chroma first: if we die before the index is saved, the next open rebuilds the
            # index from Chroma and the source stays removed.
            if ids:
                self.collection.delete(ids=ids)
            for source in sources:
                del self.manifest[source]
            self.save_index({}, ids)
            return len(ids)

    # ---- reading --------------------------------------------------------------------------
    def sources(self) -> list[SourceInfo]:
        self.refresh()
        return [
            SourceInfo(
                source,
                len(e["chunk_ids"]),
                e["file_hash"],
                e["size_bytes"],
                e.get("pages"),
                e["added_at"],
                e["chunking"],
            )
            for source, e in sorted(self.manifest.items())
        ]

    def info(self) -> dict[str, Any]:
        self.refresh()
        disk = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        return {
            "name": self.name,
            "path": str(self.folder),
            "store": self.store_label(),
            "created_at": self.meta["created_at"],
            "embedding_model": self.meta["embedding_model"],
            "embedding_model_path": self.meta["embedding_model_path"],
            "embedding_dim": self.meta.get("embedding_dim"),
            "embedding_languages": self.meta.get("embedding_languages"),
            "embedding_prompts": self.prompts(),
            "sources": len(self.manifest),
            "chunks": len(self.bm25.ids),
            "chunk_size": self.settings.chunk_size,
            "chunk_overlap": self.settings.chunk_overlap,
            "reranker_model": self.settings.reranker_model,
            "fusion": asdict(self.fusion),
            "disk_bytes": disk,
        }

    def search(self, query: str, k: int = 5, mode: str = "hybrid", rerank: bool | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first.

        ``mode``: "hybrid" (dense and BM25, fused), "dense" or "bm25" (which needs no
        embedding model). ``rerank``: None = rerank when ``reranker_model`` is set.
        """
        return retrieve.search(self, query, k, mode, rerank)


__all__ = [
    "EmbeddingModelMismatch",
    "IngestFailed",
    "KnowledgeBase",
    "KnowledgeBaseExists",
    "KnowledgeBaseNotFound",
    "SourceInfo",
]
