"""``KnowledgeIndex``: the storage of one knowledge base (its Chroma collection, BM25 index,
sources manifest and embedding model), and the operations on it that searching
(``retrieve.py``), writing (``writer.py``) and the ``KnowledgeBase`` facade (``kb.py``) share.
Kept apart from ``kb.py`` so those modules depend on this one and not on each other.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.knowledge.embeddings import (
    EMBED_BATCH,
    PASSAGE,
    cosine_scale,
    covers_cjk,
    embed_in_bf16,
    embedding_model,
    load_sentence_model,
    make_embedding_function,
    model_languages,
    model_prompts,
    resolve_embedding_model,
    text_language,
    with_prompt,
)
from assistant.knowledge.fusion import Fusion
from assistant.knowledge.store import EMBEDDED, BM25Index, open_store, recorded_embedder, store_kind
from assistant.progress import Progress
from assistant.storage import write_atomic

if TYPE_CHECKING:
    import numpy as np

    from assistant.settings import Settings


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class EmbeddingModelMismatch(ConfigError):
    """The configured embedding model is not the one the knowledge base was built with."""


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid knowledge base name {name!r}",
            hint="use letters, digits, '-', '_' and '.', starting with a letter or digit (at most 64)",
        )
    return name


def kb_folder(name: str, settings: Settings) -> Path:
    return settings.kb_dir / _check_name(name)


class KnowledgeIndex:
    """What one knowledge base holds on disk, opened lazily; ``KnowledgeBase`` adds the life cycle
    (create, open, delete), adding and removing files, and search."""

    def __init__(self, name: str, settings: Settings, meta: dict[str, Any]) -> None:
        self.name = name
        self.settings = settings
        self.folder = kb_folder(name, settings)
        self.meta = meta
        self.fusion = Fusion()
        self._client: Any = None
        self._collection: Any = None
        self.bm25 = BM25Index(self.folder / "bm25")
        self.manifest: dict[str, dict[str, Any]] = self.load_manifest()

    @property
    def client(self) -> Any:
        """The Chroma client (opened with the collection)."""
        self.collection  # noqa: B018  (opens both)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._collection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def collection(self) -> Any:
        if self._collection is None:
            try:
                path = self.recorded_model_path()
            except ModelNotFoundError:  # a pack not installed: BM25 search and listing still work
                path = Path(self.meta.get("embedding_model_path") or self.meta["embedding_model"])
            function = make_embedding_function(path, self.settings.device)
            # A server collection is made only for a knowledge base with nothing indexed yet: one
            # with chunks whose collection is missing is refused (wrong server), not emptied.
            client, collection = open_store(
                self.folder, self.meta, self.settings, function, not self.bm25.ids
            )
            recorded = recorded_embedder(collection)
            if recorded is not None and recorded != self.meta["embedding_model"]:
                client.close()
                raise EmbeddingModelMismatch(
                    f"the vector store of knowledge base {self.name!r} ({self.store_label()}) holds "
                    f"vectors of embedding model {recorded}, but the knowledge base uses "
                    f"{self.meta['embedding_model']}",
                    hint="vectors of two models are never mixed: point chroma_host/chroma_port at the server "
                    f"the knowledge base was built on, or `ladder kb delete {self.name}` and rebuild it",
                )
            self._client, self._collection = client, collection
        return self._collection

    def store_label(self) -> str:
        """Where the vectors live, for messages and ``info``: ``embedded`` or
        ``chroma-server host:port/collection``."""
        if store_kind(self.meta) == EMBEDDED:
            return EMBEDDED
        from assistant.knowledge.chroma_server import address

        return f"{store_kind(self.meta)} {address(self.settings)}/{self.meta['store']['collection']}"

    def load_manifest(self) -> dict[str, dict[str, Any]]:
        if not self.bm25.generation:
            return {}
        path = self.folder / "bm25" / f"gen-{self.bm25.generation:06d}" / "sources.json"
        data: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def save_index(self, add: dict[str, list[str]], remove: Sequence[str]) -> None:
        """The BM25 index and the manifest, saved together as the next generation."""
        self.bm25.save(add, remove, extra={"sources.json": json.dumps(self.manifest, ensure_ascii=False)})

    def refresh(self) -> None:
        """Pick up changes saved by another process or ``KnowledgeBase`` object."""
        if self.bm25.stale():
            self.bm25.reload()
            self.manifest = self.load_manifest()

    def recorded_model_path(self) -> Path:
        """The folder of the model the knowledge base was built with (packaged and pack models are
        found afresh: the virtual environment or LADDER_HOME may have moved)."""
        return resolve_embedding_model(str(self.meta["embedding_model"]), self.settings)

    def prompts(self) -> dict[str, str]:
        """The query and passage prefixes of the knowledge base's model (see ``embeddings``)."""
        if "embedding_prompts" not in self.meta:  # made before prefixes were recorded
            self.meta["embedding_prompts"] = model_prompts(self.recorded_model_path())
        prompts: dict[str, str] = self.meta["embedding_prompts"]
        return prompts

    def model_path(self) -> Path:
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
            return self.recorded_model_path()
        identity, path = embedding_model(self.settings)
        if identity != self.meta["embedding_model"]:
            raise EmbeddingModelMismatch(
                f"knowledge base {self.name!r} was built with embedding model "
                f"{self.meta['embedding_model']}, but the embedding_model setting is {identity}",
                hint="unset embedding_model (the knowledge base remembers its model), set it to the one the "
                "knowledge base was built with, or create a new knowledge base for this model",
            )
        return path

    def encoder(self) -> Any:
        """The embedding model (loaded once per process), in the dtype ``embed_in_bf16`` picks."""
        return load_sentence_model(self.model_path(), self.settings.device, bf16=embed_in_bf16(self.settings))

    def embed(
        self, texts: Sequence[str], progress: Progress | None = None, side: str = PASSAGE
    ) -> np.ndarray:
        """Normalized embeddings, one row per text (float32: 1.5 KB a chunk, not 30 KB of floats).

        ``side`` is ``"passage"`` for what is stored and ``"query"`` for what is searched for: the
        model's prefix for that side (e5's ``"query: "``) goes in front of each text.
        """
        import numpy as np

        model = self.encoder()
        texts = with_prompt(texts, self.prompts(), side)
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
    def writing(self) -> Iterator[None]:
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
                self.refresh()
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def cosine_scale(self, query: str, passage: str) -> tuple[float, float]:
        """(unrelated, answering) cosines of the model in the languages of ``query`` and ``passage``
        (``embeddings.cosine_scale``), measured once and recorded in kb.json."""
        scale = self.meta.get("embedding_cosine_scale")
        if not isinstance(scale, dict):
            scale = self.meta["embedding_cosine_scale"] = cosine_scale(self.encoder(), self.prompts())
            if (self.folder / "kb.json").is_file():
                write_atomic(self.folder / "kb.json", json.dumps(self.meta, indent=2))
        low, high = scale.get(f"{text_language(query)}-{text_language(passage)}", (0.0, 1.0))
        return float(low), float(high)

    def model_covers_cjk(self) -> bool:
        if "embedding_languages" not in self.meta:  # a knowledge base made before languages were recorded
            self.meta["embedding_languages"] = model_languages(self.recorded_model_path())
        return covers_cjk(self.meta["embedding_languages"])
