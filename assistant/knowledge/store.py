"""Where chunks live: a Chroma collection for dense search and a bm25s index beside it.

The collection is an embedded PersistentClient folder, or one on a Chroma server
(``kb_store: chroma-server``, ``chroma_server.py``); ``open_store`` opens whichever the
knowledge base's kb.json names. The BM25 index is always local.

- The Chroma collection always gets an explicit embedding function (``embeddings.py``).
- The BM25 index tokenizes Chinese with jieba (search mode, so 中华人民共和国 also matches
  人民 and 共和国) and Latin text as lowercase words. bm25s cannot add to an index, so the
  tokens of every chunk are kept and the index is rebuilt on each change (fast: it is a
  sparse matrix build), then saved as a new generation and switched to atomically.

Heavy libraries (chromadb, torch, bm25s, jieba) are imported inside functions, so importing
this module costs nothing.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.storage import write_atomic

if TYPE_CHECKING:
    import numpy as np

    from assistant.settings import Settings

COLLECTION = "chunks"


# ---- tokens -----------------------------------------------------------------------------
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|[^\W_{_CJK}]+(?:['’][^\W_{_CJK}]+)*")
# Words too common to tell documents apart, and question words that a query adds but a
# document does not contain ("什么", "哪个", "which"): they only add noise to the scores.
_STOPWORD_TEXT = """
的 了 是 在 和 与 及 或 也 都 而 之 其 被 把 对 于 为 以 等 着 过 吗 呢
吧 啊 呀 么 什么 哪 哪个 哪些 哪里 哪儿 哪一 多少 几 几个 几天 几年 几次 多久
多长 怎么 怎样 怎么样 如何 为什么 为何 谁 是否 是不是 一个 这个 那个 这 那 这些
那些 有 我 你 他 她 它 我们 你们 他们
a an the of to in on at by for from with and or is are was were be been being do does did what which
who whom whose when where why how that this these those it its as into than then there their they
them he she his her i you we our your not no can could would should
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_jieba_lock = threading.Lock()


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" chatter on stderr
    with _jieba_lock:
        jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """BM25 tokens: jieba search-mode words for Chinese runs, lowercase words otherwise."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        piece = match.group(0)
        words = _jieba().lcut_for_search(piece) if match.group("cjk") else [piece.lower()]
        tokens.extend(w for w in words if w not in STOPWORDS)
    return tokens


# ---- BM25 -------------------------------------------------------------------------------
class BM25Index:
    """A bm25s index over chunk ids, persisted as numbered generations under ``folder``.

    ``CURRENT`` names the live generation; a save writes a new one and then switches
    ``CURRENT``, so a crash mid-save leaves the previous index intact.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.generation = 0
        self.ids: list[str] = []
        self._tokens: dict[str, list[str]] | None = None
        self._index: Any = None
        self._positions: dict[str, int] | None = None
        self.reload()

    def _current(self) -> int:
        try:
            return int((self.folder / "CURRENT").read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0

    def stale(self) -> bool:
        """Whether another process (or KnowledgeBase object) saved a newer generation."""
        return self._current() != self.generation

    def reload(self) -> None:
        self.generation = self._current()
        self._tokens = None
        self._index = None
        self._positions = None
        self.ids = []
        if not self.generation:
            return
        path = self.folder / f"gen-{self.generation:06d}"
        self.ids = json.loads((path / "ids.json").read_text(encoding="utf-8"))

    def _loaded(self) -> Any:
        """The bm25s index, read on first use (listing sources never needs it)."""
        if self._index is None and self.ids:
            import bm25s

            path = self.folder / f"gen-{self.generation:06d}" / "index"
            self._index = bm25s.BM25.load(str(path), show_progress=False, mmap=False)
        return self._index

    def tokens(self) -> dict[str, list[str]]:
        """Every chunk's tokens, read on the first change (searching never needs them)."""
        if self._tokens is None:
            self._tokens = {}
            if self.generation:
                path = self.folder / f"gen-{self.generation:06d}" / "tokens.jsonl"
                with path.open(encoding="utf-8") as handle:
                    for line in handle:
                        chunk_id, tokens = json.loads(line)
                        self._tokens[chunk_id] = tokens
        return self._tokens

    def save(
        self, add: dict[str, list[str]], remove: Iterable[str], extra: dict[str, str] | None = None
    ) -> None:
        """Apply a change, rebuild, and persist it as the next generation.

        ``extra`` files (name -> text) are written into the generation before it goes live.
        """
        import bm25s

        tokens = dict(self.tokens())
        for chunk_id in remove:
            tokens.pop(chunk_id, None)
        tokens.update(add)
        ids = list(tokens)
        index: Any = None
        generation = max(self.generation, self._current()) + 1
        path = self.folder / f"gen-{generation:06d}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        if ids:
            index = bm25s.BM25()
            index.index([tokens[i] for i in ids], show_progress=False)
            index.save(str(path / "index"), show_progress=False)
        with (path / "tokens.jsonl").open("w", encoding="utf-8") as handle:
            for chunk_id in ids:
                handle.write(json.dumps([chunk_id, tokens[chunk_id]], ensure_ascii=False) + "\n")
        (path / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        for name, text in (extra or {}).items():
            (path / name).write_text(text, encoding="utf-8")
        write_atomic(self.folder / "CURRENT", str(generation))
        old = self.generation
        self.generation, self.ids, self._tokens, self._index = generation, ids, tokens, index
        self._positions = None
        for stale in self.folder.glob("gen-*"):
            if stale.name != path.name and stale.name != f"gen-{old:06d}":
                shutil.rmtree(stale, ignore_errors=True)
        if old:
            # The previous generation goes last: a reader in another process may still load it.
            shutil.rmtree(self.folder / f"gen-{old:06d}", ignore_errors=True)

    def positions(self) -> dict[str, int]:
        """Chunk id -> its position in ``ids`` (and in the arrays ``scores`` returns)."""
        if self._positions is None:
            self._positions = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
        return self._positions

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray | None:
        """BM25 score of every chunk (in ``ids`` order); None when no query token is indexed."""
        index = self._loaded()
        if index is None:
            return None
        token_ids = [index.vocab_dict[t] for t in query_tokens if t and t in index.vocab_dict]
        if not token_ids:
            return None
        result: np.ndarray = index.get_scores_from_ids(token_ids)
        return result

    def coverage(self, query_tokens: Sequence[str], positions: Sequence[int | None]) -> list[float]:
        """For chunks at ``positions``: the IDF-weighted share of the query's terms each contains.

        From 0 to 1, and unlike a BM25 score it does not grow with the query's length, so one
        threshold works across queries: a chunk with the question's rare words scores near
        1, one that shares only common words near 0. Read from the index's postings, so no
        chunk is tokenized again. A position of None (not indexed) scores 0.
        """
        import numpy as np

        terms = list(dict.fromkeys(t for t in query_tokens if t))
        if not terms or not positions:
            return [0.0] * len(positions)
        index = self._loaded()
        n = len(self.ids)
        where = np.asarray([-1 if p is None else p for p in positions])
        found = np.zeros(len(where))
        total = 0.0
        for term in terms:
            df, postings = 0, None
            if index is not None and term in index.vocab_dict:
                token_id = index.vocab_dict[term]
                start, end = index.scores["indptr"][token_id], index.scores["indptr"][token_id + 1]
                df, postings = int(end - start), index.scores["indices"][start:end]
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))  # BM25's IDF; unseen terms weigh most
            total += idf
            if postings is not None:
                found += idf * np.isin(where, postings)
        return (found / total).tolist() if total else [0.0] * len(positions)


# ---- Chroma ----------------------------------------------------------------------------
# A knowledge base's kb.json says where its vectors live (``store``): {"kind": "embedded"} (the
# default, and what a kb.json without the key means) is a PersistentClient folder beside the
# BM25 index; {"kind": "chroma-server", "collection": ...} is a collection on the server that
# the settings chroma_host/chroma_port/chroma_tls point at (``chroma_server.py``). The kb_store
# setting picks the kind of a new knowledge base; an existing one stays where it was built.
EMBEDDED = "embedded"


def new_store_record(kb_name: str, kb_store: str) -> dict[str, str]:
    """What kb.json records about the store of a new knowledge base."""
    if kb_store == EMBEDDED:
        return {"kind": EMBEDDED}
    from assistant.knowledge import chroma_server

    return chroma_server.new_store_record(kb_name)


def store_kind(meta: dict[str, Any]) -> str:
    record = meta.get("store") or {}
    return str(record.get("kind", EMBEDDED))


def open_store(
    folder: Path, meta: dict[str, Any], settings: Settings, embedding_function: Any, create: bool
) -> tuple[Any, Any]:
    """(client, collection) of a knowledge base, wherever its kb.json says its vectors live.

    ``create``: a server collection may be made if missing (an embedded one always may).
    """
    embedder = str(meta["embedding_model"])
    if store_kind(meta) == EMBEDDED:
        return open_collection(folder / "chroma", embedding_function, embedder)
    from assistant.knowledge import chroma_server

    return chroma_server.open_collection(
        settings, meta["store"], embedding_function, embedder, str(meta["name"]), create
    )


def drop_store(folder: Path, meta: dict[str, Any], settings: Settings) -> None:
    """Release or delete a knowledge base's vectors before its folder is deleted."""
    if store_kind(meta) == EMBEDDED:
        forget_chroma(folder / "chroma")
        return
    from assistant.knowledge import chroma_server

    chroma_server.delete_collection(settings, meta["store"])


def recorded_embedder(collection: Any) -> str | None:
    """The embedding model a collection was made for: the one its metadata names, else
    ``chroma:<name>`` when it was made with a Chroma embedding function that is not Ladder's,
    else None (a Ladder collection made before the model was recorded)."""
    from assistant.knowledge.chroma_server import EMBEDDER_KEY
    from assistant.knowledge.embeddings import embedding_function_class

    value = (collection.metadata or {}).get(EMBEDDER_KEY)
    if value is not None:
        return str(value)
    configuration = getattr(collection, "configuration_json", None) or {}
    function = (configuration.get("embedding_function") or {}).get("name")
    ladder_function: Any = embedding_function_class()
    if function and function != ladder_function.name():
        return f"chroma:{function}"
    return None


def open_collection(folder: Path, embedding_function: Any, embedder: str | None = None) -> tuple[Any, Any]:
    """(client, collection) for the chunks under ``folder``, cosine space; a new collection's
    metadata records ``embedder``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from assistant.knowledge.chroma_server import EMBEDDER_KEY

    client = chromadb.PersistentClient(path=str(folder), settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_or_create_collection(
        COLLECTION,
        embedding_function=embedding_function,
        metadata={EMBEDDER_KEY: embedder} if embedder else None,
        configuration={"hnsw": {"space": "cosine"}},
    )
    return client, collection


def forget_chroma(folder: Path) -> None:
    """Drop Chroma's in-process cache for a folder about to be deleted, so it can be re-created."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:
        return
    for identifier in (str(folder), str(folder.resolve())):
        SharedSystemClient._identifier_to_refcount.pop(identifier, None)
        system = SharedSystemClient._identifier_to_system.pop(identifier, None)
        if system is not None:
            system.stop()


__all__ = [
    "COLLECTION",
    "EMBEDDED",
    "STOPWORDS",
    "BM25Index",
    "drop_store",
    "forget_chroma",
    "new_store_record",
    "open_collection",
    "open_store",
    "recorded_embedder",
    "store_kind",
    "tokenize",
]
