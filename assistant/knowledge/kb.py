"""``KnowledgeBase``: a named collection of documents under ``LADDER_HOME/kb/<name>/``.

Layout of one knowledge base::

    kb.json          name, creation time, the embedding model it was built with
    chroma/          Chroma PersistentClient: chunk text, metadata and embeddings
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
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError, LadderError
from assistant.knowledge import retrieve, writer
from assistant.knowledge.embeddings import (
    EMBED_BATCH,
    PACKAGED_EMBEDDING,
    covers_cjk,
    embedding_model,
    load_sentence_model,
    make_embedding_function,
    model_languages,
)
from assistant.knowledge.ingest import IngestReport, collect
from assistant.knowledge.retrieve import Fusion, Hit
from assistant.knowledge.store import BM25Index, forget_chroma, open_collection
from assistant.progress import NullProgress, Progress
from assistant.settings import replace
from assistant.storage import write_atomic

if TYPE_CHECKING:
    import numpy as np

    from assistant.settings import Settings

FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class KnowledgeBaseNotFound(LadderError):
    exit_code = 3


class KnowledgeBaseExists(LadderError):
    pass


class IngestFailed(LadderError):
    """Some files could not be ingested (the others were)."""

    exit_code = 1


class EmbeddingModelMismatch(ConfigError):
    """The configured embedding model is not the one the knowledge base was built with."""


@dataclass
class SourceInfo:
    source: str
    chunks: int
    file_hash: str
    size_bytes: int
    pages: int | None
    added_at: float  # seconds since the epoch
    chunking: str  # "size/overlap" the file was chunked with


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid knowledge base name {name!r}",
            hint="use letters, digits, '-', '_' and '.', starting with a letter or digit (at most 64)",
        )
    return name


def _folder(name: str, settings: Settings) -> Path:
    return settings.kb_dir / _check_name(name)


class KnowledgeBase:
    """Open one with ``KnowledgeBase.open(name, settings)`` or ``KnowledgeBase.create``."""

    def __init__(self, name: str, settings: Settings, meta: dict[str, Any]) -> None:
        self.name = name
        self.settings = settings
        self.folder = _folder(name, settings)
        self.meta = meta
        self.fusion = Fusion()
        self._client: Any = None
        self._collection: Any = None
        self.bm25 = BM25Index(self.folder / "bm25")
        self._manifest: dict[str, dict[str, Any]] = self._load_manifest()

    # ---- lifecycle ----------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, settings: Settings) -> KnowledgeBase:
        folder = _folder(name, settings)
        if (folder / "kb.json").exists():
            raise KnowledgeBaseExists(
                f"knowledge base {name!r} already exists", hint=f"use it, or `ladder kb delete {name}` first"
            )
        identity, path = embedding_model(settings)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "name": name,
            "created_at": time.time(),
            "embedding_model": identity,
            "embedding_model_path": str(path),
            "embedding_dim": None,
            "embedding_languages": model_languages(path),
        }
        write_atomic(folder / "kb.json", json.dumps(meta, indent=2))
        return cls(name, settings, meta)

    @classmethod
    def open(cls, name: str, settings: Settings) -> KnowledgeBase:
        path = _folder(name, settings) / "kb.json"
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
        path = _folder(name, settings) / "kb.json"
        if not path.is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}", hint=f"ladder kb create {name}"
            )
        kb = cls(name, settings, json.loads(path.read_text(encoding="utf-8")))
        return {
            "name": name,
            "sources": len(kb._manifest),
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

        path = _folder(name, settings) / "kb.json"
        if not path.is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}", hint=f"ladder kb create {name}"
            )
        kb = cls(name, settings, json.loads(path.read_text(encoding="utf-8")))
        sources = {s: (e["file_hash"], e["chunking"]) for s, e in kb._manifest.items()}
        text = json.dumps(
            [kb.meta.get("embedding_model"), sources, settings.reranker_model], sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @staticmethod
    def list_all(settings: Settings) -> list[str]:
        if not settings.kb_dir.is_dir():
            return []
        return sorted(p.parent.name for p in settings.kb_dir.glob("*/kb.json"))

    @staticmethod
    def delete(name: str, settings: Settings) -> None:
        folder = _folder(name, settings)
        if not (folder / "kb.json").is_file():
            raise KnowledgeBaseNotFound(
                f"no knowledge base named {name!r} in {settings.kb_dir}",
                hint="`ladder kb list` shows the knowledge bases",
            )
        forget_chroma(folder / "chroma")
        shutil.rmtree(folder)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._collection = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------
    @property
    def collection(self) -> Any:
        if self._collection is None:
            function = make_embedding_function(self._recorded_model_path(), self.settings.device)
            self._client, self._collection = open_collection(self.folder / "chroma", function)
        return self._collection

    def _load_manifest(self) -> dict[str, dict[str, Any]]:
        if not self.bm25.generation:
            return {}
        path = self.folder / "bm25" / f"gen-{self.bm25.generation:06d}" / "sources.json"
        data: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _save_index(self, add: dict[str, list[str]], remove: Sequence[str]) -> None:
        """The BM25 index and the manifest, saved together as the next generation."""
        self.bm25.save(add, remove, extra={"sources.json": json.dumps(self._manifest, ensure_ascii=False)})

    def _refresh(self) -> None:
        """Pick up changes saved by another process or ``KnowledgeBase`` object."""
        if self.bm25.stale():
            self.bm25.reload()
            self._manifest = self._load_manifest()

    def _recorded_model_path(self) -> Path:
        if self.meta["embedding_model"] == PACKAGED_EMBEDDING:
            # The packaged model is found afresh: the virtual environment may have moved.
            return embedding_model(replace(self.settings, embedding_model=None))[1]
        return Path(self.meta["embedding_model"])

    def _model_path(self) -> Path:
        """The embedding model folder: the one the knowledge base was built with.

        A knowledge base remembers its model, so the ``embedding_model`` setting need not be
        repeated; but if it is set (anywhere but the default) to a different model, the
        knowledge base refuses: vectors from two models cannot be compared.
        """
        explicit = (
            self.settings.embedding_model is not None
            or self.settings.sources.get("embedding_model", "default") != "default"
        )
        if not explicit:
            return self._recorded_model_path()
        identity, path = embedding_model(self.settings)
        if identity != self.meta["embedding_model"]:
            raise EmbeddingModelMismatch(
                f"knowledge base {self.name!r} was built with embedding model "
                f"{self.meta['embedding_model']}, but the embedding_model setting is {identity}",
                hint="unset embedding_model (the knowledge base remembers its model), set it to the one the "
                "knowledge base was built with, or create a new knowledge base for this model",
            )
        return path

    def _embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Normalized embeddings, one row per text (float32: 1.5 KB a chunk, not 30 KB of floats)."""
        import numpy as np

        model = load_sentence_model(self._model_path(), self.settings.device)
        batches = []
        step = 128
        for start in range(0, len(texts), step):
            batch = model.encode(
                list(texts[start : start + step]),
                batch_size=EMBED_BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            batches.append(np.asarray(batch, dtype=np.float32))
            if progress is not None:
                progress.advance(len(batch))
        if not batches:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.vstack(batches)
        dim = int(vectors.shape[1])
        if self.meta.get("embedding_dim") is None:
            self.meta["embedding_dim"] = dim
            write_atomic(self.folder / "kb.json", json.dumps(self.meta, indent=2))
        elif self.meta["embedding_dim"] != dim:
            raise EmbeddingModelMismatch(
                f"the embedding model gives {dim}-dimensional vectors but knowledge base {self.name!r} "
                f"holds {self.meta['embedding_dim']}-dimensional ones"
            )
        return vectors

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time, across processes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".lock").open("a") as handle:
            try:
                import fcntl
            except ImportError:  # Windows: no cross-process lock
                fcntl = None  # type: ignore[assignment]
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._refresh()
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure_consistent(self) -> None:
        """Rebuild the BM25 index and manifest from Chroma when a crash left them behind."""
        indexed = sum(len(entry["chunk_ids"]) for entry in self._manifest.values())
        if self.collection.count() == len(self.bm25.ids) == indexed:
            return
        with self._writing():
            writer.resync(self)

    # ---- adding and removing --------------------------------------------------------------
    def add(self, paths: Sequence[Path | str], progress: Progress | None = None) -> IngestReport:
        """Ingest files and folders; one ``FileReport`` per file, failures included."""
        progress = progress or NullProgress()
        started = time.perf_counter()
        self._model_path()
        with self._writing():
            candidates, problems, ignored = collect(paths, self.settings)
            report = IngestReport(files=list(problems), ignored=ignored)
            pending = writer.read_all(self, candidates, report, progress)
            total = sum(len(p.chunks) for p in pending)
            if total:
                progress.start("embedding chunks", total=total, unit="chunks")
            vectors = self._embed([c.text for p in pending for c in p.chunks], progress)
            writer.write_all(self, pending, vectors)
        report.seconds = time.perf_counter() - started
        return report

    def _match_sources(self, path: Path | str) -> list[str]:
        raw = str(path)
        keys = {raw}
        with contextlib.suppress(OSError, RuntimeError):
            keys.add(str(Path(raw).expanduser().resolve()))
        keys.add(str(Path(raw).expanduser().absolute()))
        exact = [k for k in keys if k in self._manifest]
        if exact:
            return exact
        # A folder: every source under it.
        prefixes = tuple(k.rstrip(os.sep) + os.sep for k in keys)
        return [source for source in self._manifest if source.startswith(prefixes)]

    def remove_source(self, path: Path | str) -> int:
        """Remove a file (or every file under a folder); returns the number of chunks removed."""
        with self._writing():
            sources = self._match_sources(path)
            ids = [chunk_id for source in sources for chunk_id in self._manifest[source]["chunk_ids"]]
            if not sources:
                return 0
            # Chroma first: if we die before the index is saved, the next open rebuilds the
            # index from Chroma and the source stays removed.
            if ids:
                self.collection.delete(ids=ids)
            for source in sources:
                del self._manifest[source]
            self._save_index({}, ids)
            return len(ids)

    # ---- reading --------------------------------------------------------------------------
    def sources(self) -> list[SourceInfo]:
        self._refresh()
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
            for source, e in sorted(self._manifest.items())
        ]

    def info(self) -> dict[str, Any]:
        self._refresh()
        disk = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        return {
            "name": self.name,
            "path": str(self.folder),
            "created_at": self.meta["created_at"],
            "embedding_model": self.meta["embedding_model"],
            "embedding_model_path": self.meta["embedding_model_path"],
            "embedding_dim": self.meta.get("embedding_dim"),
            "embedding_languages": self.meta.get("embedding_languages"),
            "sources": len(self._manifest),
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

    def _model_covers_cjk(self) -> bool:
        if "embedding_languages" not in self.meta:  # a knowledge base made before languages were recorded
            self.meta["embedding_languages"] = model_languages(self._recorded_model_path())
        return covers_cjk(self.meta["embedding_languages"])


__all__ = [
    "EmbeddingModelMismatch",
    "IngestFailed",
    "KnowledgeBase",
    "KnowledgeBaseExists",
    "KnowledgeBaseNotFound",
    "SourceInfo",
]
