"""Which passages a generated item asks about: the knowledge base's chunks, their neighbours
for multi-hop items, and a seeded order of chunks and focus sentences (see
``evaluation.generate.engine`` for the whole run).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

from assistant.types import Message
from evaluation.generate.checks import language
from evaluation.generate.prompts import build_messages, sentences

if TYPE_CHECKING:
    import numpy as np

    from assistant.knowledge import KnowledgeBase

SINGLE, MULTI = "single_hop", "multi_hop"
NEAR_COPY = 0.7  # token-set Jaccard above which two chunks are copies, not neighbours
SAME_DOCUMENT_BONUS = 0.2


@dataclass(frozen=True)
class KbChunk:
    chunk_id: str
    text: str
    source: str  # the file, as the knowledge base lists it (an absolute path on this machine)
    number: int  # the chunk's number within its file
    lang: str
    name: str = ""  # the file relative to the knowledge base's source root: what a suite shows

    @property
    def where(self) -> str:
        """``file#chunk``, never an absolute path: a suite is shared, the server's folders are not."""
        return f"{self.name or PurePath(self.source).name}#{self.number}"


@dataclass
class Task:
    kind: str
    chunks: tuple[KbChunk, ...]
    focus: tuple[str, ...] = ()  # the sentence of each chunk to ask about (none: the whole chunk)
    attempt: int = 0

    def messages(self, avoid: Sequence[str]) -> list[Message]:
        return build_messages([c.text for c in self.chunks], self.focus, self.chunks[0].lang, avoid)


# ---- chunks and neighbours ------------------------------------------------------------------
def source_names(sources: Iterable[str]) -> dict[str, str]:
    """Each source file relative to the folder all of them share (the knowledge base's source
    root), as a POSIX path: ``refunds.md``, ``policies/leave.md``. Never absolute, so a generated
    suite names its files without the server's folders."""
    paths = {source: PurePath(source) for source in sources}
    folders = [p.parent for p in paths.values() if p.is_absolute()]
    root = (
        PurePath(os.path.commonpath(folders)) if folders and len({f.anchor for f in folders}) == 1 else None
    )
    names = {}
    for source, path in paths.items():
        if root is not None and path.is_absolute():
            path = path.relative_to(root)
        names[source] = path.relative_to(path.anchor).as_posix() if path.anchor else path.as_posix()
    return names


def load_chunks(kb: KnowledgeBase) -> tuple[list[KbChunk], np.ndarray | None]:
    """Every chunk of the knowledge base, ordered by source and number, and its stored vector."""
    import numpy as np

    stored = kb.collection.get(include=["documents", "metadatas", "embeddings"])
    rows = sorted(
        range(len(stored["ids"])),
        key=lambda r: (str(stored["metadatas"][r]["source"]), int(stored["metadatas"][r]["chunk"])),
    )
    names = source_names(str(m["source"]) for m in stored["metadatas"])
    chunks = [
        KbChunk(
            stored["ids"][r],
            stored["documents"][r],
            str(stored["metadatas"][r]["source"]),
            int(stored["metadatas"][r]["chunk"]),
            language(stored["documents"][r]),
            names[str(stored["metadatas"][r]["source"])],
        )
        for r in rows
    ]
    embeddings = stored.get("embeddings")
    if embeddings is None or len(embeddings) != len(rows) or not len(rows):
        return chunks, None
    vectors = np.asarray([embeddings[r] for r in rows], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return chunks, vectors / np.where(norms == 0, 1, norms)


class Planner:
    """Which passages to ask about next: a seeded order, cycled when the chunks run out."""

    def __init__(
        self,
        chunks: list[KbChunk],
        vectors: np.ndarray | None,
        tokens: dict[str, set[str]],
        seed: int,
        dense_for_zh: bool = True,
    ) -> None:
        self.chunks, self.vectors, self.tokens = chunks, vectors, tokens
        # An English-only embedding model puts any two Chinese texts close together (0.7
        # between the demo's leave and expenses chapters): its cosine is noise there.
        self.dense_langs = {"en", "zh"} if dense_for_zh else {"en"}
        rng = random.Random(seed)
        self.single_order = list(range(len(chunks)))
        rng.shuffle(self.single_order)
        self.multi_order = list(range(len(chunks)))
        rng.shuffle(self.multi_order)
        self._neighbours: dict[int, list[int]] = {}
        self._uses: Counter[int] = Counter()
        self._next_single = self._next_multi = 0
        self._sentences: dict[int, list[str]] = {}
        self._asked: Counter[int] = Counter()
        self.seed = seed

    def focus(self, index: int) -> str | None:
        """The chunk's next sentence to ask about, in a seeded order; None if it has none."""
        if index not in self._sentences:
            found = sentences(self.chunks[index].text)
            random.Random(f"{self.seed}:{self.chunks[index].chunk_id}").shuffle(found)
            self._sentences[index] = found
        found = self._sentences[index]
        if not found:
            return None
        self._asked[index] += 1
        return found[(self._asked[index] - 1) % len(found)]

    def _task(self, kind: str, indexes: Sequence[int]) -> Task:
        focus = [self.focus(i) for i in indexes]
        chunks = tuple(self.chunks[i] for i in indexes)
        return Task(kind, chunks, tuple(f for f in focus if f) if all(focus) else ())

    def neighbours(self, index: int) -> list[int]:
        """Other chunks in the same language, most related first."""
        if index not in self._neighbours:
            anchor = self.chunks[index]
            mine = self.tokens[anchor.chunk_id]
            scored = []
            for other, chunk in enumerate(self.chunks):
                if other == index or chunk.lang != anchor.lang:
                    continue
                theirs = self.tokens[chunk.chunk_id]
                overlap = len(mine & theirs) / len(mine | theirs) if mine | theirs else 0.0
                if overlap > NEAR_COPY:
                    continue
                score = overlap + (SAME_DOCUMENT_BONUS if chunk.source == anchor.source else 0.0)
                if self.vectors is not None and anchor.lang in self.dense_langs:
                    score += float(self.vectors[index] @ self.vectors[other])
                scored.append((-score, chunk.chunk_id, other))
            self._neighbours[index] = [other for _, _, other in sorted(scored)]
        return self._neighbours[index]

    def has_pairs(self) -> bool:
        """Whether two chunks share a language (cheap: neighbours are ranked only when used)."""
        return max(Counter(c.lang for c in self.chunks).values(), default=0) >= 2

    def next(self, kind: str) -> Task:
        """The next task of ``kind``; a single-hop one when no chunk has a neighbour after all."""
        if kind == MULTI:
            for _ in range(len(self.multi_order)):
                anchor = self.multi_order[self._next_multi % len(self.multi_order)]
                self._next_multi += 1
                partners = self.neighbours(anchor)
                if partners:
                    # The anchor's k-th use pairs it with its k-th neighbour.
                    partner = partners[self._uses[anchor] % len(partners)]
                    self._uses[anchor] += 1
                    return self._task(MULTI, [anchor, partner])
        index = self.single_order[self._next_single % len(self.single_order)]
        self._next_single += 1
        return self._task(SINGLE, [index])


def kinds(n: int, multi: int) -> list[str]:
    """``n`` kinds with ``multi`` multi-hop ones spread evenly among them."""
    return [MULTI if (i + 1) * multi // n > i * multi // n else SINGLE for i in range(n)]


def avoid(task: Task, asked: dict[str, list[str]], most: int = 5) -> list[str]:
    seen = [q for chunk in task.chunks for q in asked.get(chunk.chunk_id, [])]
    return list(dict.fromkeys(seen))[-most:]


__all__ = ["MULTI", "SINGLE", "KbChunk", "Planner", "Task", "avoid", "kinds", "load_chunks", "source_names"]
