"""Search results, the fusion of dense and BM25 rankings, and cross-encoder reranking.

Fusion is weighted reciprocal rank fusion: a chunk scores ``w / (k + rank)`` from each
ranking it appears in. Ranks, not scores, are fused because cosine similarities and BM25
scores live on unrelated scales. The dense weight depends on whether the embedding model
knows the query's language (see ``Fusion``).

A BM25 rank must mean something (``Fusion.bm25_places``): equal scores share the places
they span, each taking the average credit of those places, and a score under
``Fusion.bm25_floor`` of the best one counts as no match. Otherwise 300 notes that all
contain "limit" and "case" (about 0.0015 each; the one that also has "123" scores 1.37) get
BM25 ranks 2..50 in arbitrary order, and the notes the dense model likes best, pushed up by
those made-up ranks, outrank the only real match. Chunks whose fused scores tie are ordered
by ``Hit.score``, then by chunk id.

Every hit also carries absolute signals that do not depend on the other hits, so a caller
can tell "the best match is poor" from "this is the best match": the cosine similarity to
the query, the raw BM25 score, and the IDF-weighted share of the query's terms that the
chunk contains. ``Hit.score`` combines them into one number in [0, 1] (or is the reranker's
score when reranking), which is what a "not in the knowledge base" threshold should use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError, LadderError
from assistant.knowledge.embeddings import load_sentence_model
from assistant.knowledge.store import tokenize

if TYPE_CHECKING:
    import numpy as np

    from assistant.knowledge.kb import KnowledgeBase

MODES = ("hybrid", "dense", "bm25")
# How many candidates each retriever contributes to fusion, and how many the reranker sees.
CANDIDATES = 50
RERANK_DEPTH = 20


@dataclass
class Hit:
    text: str
    source: str
    page: int | None
    chunk: int
    # Relevance in [0, 1], comparable across queries (see the module docstring). The list
    # order is the retrieval order, which for hybrid search is the fused rank.
    score: float
    chunk_id: str
    dense_rank: int | None = None  # 1-based rank in the dense list; None if not in it
    # 1-based rank in the BM25 list (tied scores share the first place of the tie); None if
    # not in it
    bm25_rank: int | None = None
    dense_score: float | None = None  # cosine similarity to the query (None in bm25 mode)
    bm25_score: float | None = None  # raw BM25 score (0 when no query term matched)
    term_coverage: float | None = None  # IDF-weighted share of query terms in the chunk
    fused_score: float | None = None  # weighted RRF score (hybrid mode)
    rerank_score: float | None = None  # cross-encoder score, when reranked

    @property
    def source_name(self) -> str:
        """The source's file name, for anything a model or a client sees (see ``source_name``)."""
        return source_name(self.source)


def source_name(source: str) -> str:
    """A source's file name without its folders: ``refunds.md`` for ``/srv/ui/uploads/hr/refunds.md``.

    ``Hit.source`` is the path a file was ingested from; on a server that is an absolute path
    (an upload folder, a home directory) that neither the model nor the client needs to see.
    """
    name = source.replace("\\", "/").rstrip("/").rpartition("/")[2]
    return name or source


_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_OTHER_WORD = re.compile(rf"[^\W\d_{_CJK_RANGES}]+")
# A query counts as Chinese, Japanese or Korean when its CJK characters, taken as words of
# 1.5 characters, are at least half its words: "Antichrist Superstar是谁的个人专辑?" is a
# Chinese question with an English name in it, "How do I configure 代理?" an English one.
CJK_QUERY_SHARE = 0.5


def cjk_share(text: str) -> float:
    """The share of a text's words that are CJK (digits and punctuation aside)."""
    cjk_words = len(_CJK_CHAR.findall(text)) / 1.5
    other_words = len(_OTHER_WORD.findall(text))
    total = cjk_words + other_words
    return cjk_words / total if total else 0.0


@dataclass(frozen=True)
class Fusion:
    """Weighted reciprocal rank fusion, with the dense weight set per query by language.

    An embedding model is only as good as the languages it was trained on: the packaged
    all-MiniLM-L6-v2 is English-only and on Chinese (CMRC 2018 dev) has the right passage
    in its top 5 for 11% of questions, against 99% for BM25. Any fixed dense weight large
    enough to matter in English hurts Chinese (0.3 at k=10 costs 5 points of recall@1), so
    the dense weight is ``dense_weight`` (equal to BM25's, as in plain RRF) for a query in
    a language the model covers, and ``foreign_dense_weight`` for a Chinese, Japanese or
    Korean query (see ``cjk_share``) when the model card's ``language`` list does not name
    one of them (a model without a card is trusted). At 0.05 dense only breaks near-ties
    in BM25's ranking. ``k`` is 10 rather than the customary 60 so that top ranks count:
    at 60 even a 0.05 dense weight pulls CMRC recall@1 down from 0.96 to 0.90.
    """

    k: float = 10.0
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    foreign_dense_weight: float = 0.05
    # BM25 scores under this share of the best score count as no match, and scores closer
    # than ``tie_tolerance`` x the best score are ties (see ``bm25_places``).
    bm25_floor: float = 0.01
    tie_tolerance: float = 1e-9

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ValueError(f"fusion k must be >= 0, got {self.k}")
        for name in ("bm25_floor", "tie_tolerance"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"fusion {name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("dense_weight", "bm25_weight", "foreign_dense_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"fusion {name} must be >= 0, got {getattr(self, name)}")
        if self.dense_weight + self.bm25_weight == 0:
            raise ValueError("fusion dense_weight and bm25_weight cannot both be 0")

    def dense_weight_for(self, query: str, model_covers_cjk: bool = True) -> float:
        if model_covers_cjk or cjk_share(query) < CJK_QUERY_SHARE:
            return self.dense_weight
        return self.foreign_dense_weight

    def fuse(
        self,
        dense: Sequence[str],
        bm25: Sequence[str],
        dense_weight: float | None = None,
        bm25_places: Sequence[tuple[int, int]] | None = None,
    ) -> list[tuple[str, float]]:
        """Chunk ids by fused score, best first, normalized so 1.0 = first in both lists.

        ``bm25_places`` gives, for each chunk of ``bm25``, the first and last place of its
        tie (``bm25_places``); it earns the mean credit of those places. Without it every
        chunk has a place of its own. Equal fused scores come in chunk id order here; search
        orders them by relevance.
        """
        dense_weight = self.dense_weight if dense_weight is None else dense_weight
        scores: dict[str, float] = {}
        for rank, chunk_id in enumerate(dense, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + dense_weight / (self.k + rank)
        places = bm25_places if bm25_places is not None else [(r, r) for r in range(1, len(bm25) + 1)]
        if len(places) != len(bm25):
            raise ValueError(f"{len(places)} BM25 places for {len(bm25)} chunks")
        credits: dict[tuple[int, int], float] = {}
        for chunk_id, span in zip(bm25, places, strict=True):
            if span not in credits:
                credits[span] = self.bm25_weight * _mean_reciprocal(self.k, *span)
            scores[chunk_id] = scores.get(chunk_id, 0.0) + credits[span]
        best = (dense_weight + self.bm25_weight) / (self.k + 1) or 1.0
        order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [(chunk_id, score / best) for chunk_id, score in order]

    def bm25_places(self, scores: np.ndarray, depth: int) -> list[tuple[int, int, int]]:
        """The BM25 ranking fusion uses: ``(position, first, last)`` for the ``depth`` best
        chunks (``position`` indexes ``scores``), best first, where ``first..last`` are the
        1-based places its tie spans.

        A tie is every score within ``tie_tolerance`` x the best score of its highest member
        (equal up to rounding, by default). A tie that the cut at ``depth`` would split is
        taken whole, so tied chunks always earn the same. Scores under ``bm25_floor`` x the
        best score are left out, as chunks with no query term are: they share only words
        found nearly everywhere, their order is one of document length, and ranking them
        would hand out rank credit for nothing. (A 1% floor leaves CMRC 2018 recall as it
        was; treating scores within 1% as ties instead cost a question in 1,000.)
        """
        import numpy as np

        if scores is None or not len(scores):
            return []
        best = float(scores.max())
        if best <= 0:
            return []
        tolerance = self.tie_tolerance * best
        matching = np.flatnonzero((scores > 0) & (scores >= self.bm25_floor * best))
        if len(matching) > depth:
            top = matching[np.argpartition(-scores[matching], depth - 1)[:depth]]
        else:
            top = matching
        top = top[np.argsort(-scores[top], kind="stable")]
        chosen = np.zeros(len(scores), dtype=bool)
        chosen[top] = True
        out: list[tuple[int, int, int]] = []
        start = 0
        while start < len(top):
            low = scores[top[start]] - tolerance
            end = start + int(np.count_nonzero(scores[top[start:]] >= low))
            members = [int(p) for p in top[start:end]]
            if end == len(top):  # the last tie may go on past the cut
                rest = matching[~chosen[matching] & (scores[matching] >= low)]
                members += [int(p) for p in rest[np.argsort(-scores[rest], kind="stable")]]
            first = len(out) + 1
            out += [(p, first, first + len(members) - 1) for p in members]
            start = end
        return out

    def relevance(self, dense_score: float | None, term_coverage: float | None, dense_weight: float) -> float:
        """Absolute relevance in [0, 1]: cosine and term coverage, weighted like the fusion."""
        parts = []
        if dense_score is not None:
            parts.append((dense_weight, max(0.0, min(1.0, dense_score))))
        if term_coverage is not None:
            parts.append((self.bm25_weight, term_coverage))
        total = sum(w for w, _ in parts)
        return sum(w * v for w, v in parts) / total if total else 0.0


def _mean_reciprocal(k: float, first: int, last: int) -> float:
    """The mean of ``1 / (k + r)`` for places ``first..last``: what each chunk of a tie earns."""
    import numpy as np

    if first == last:
        return 1.0 / (k + first)
    return float(np.mean(1.0 / (k + np.arange(first, last + 1, dtype=np.float64))))


def _fused_order(hit: Hit) -> tuple[float, ...]:
    """Hybrid order: fused score, then (for ties) relevance, BM25 score and cosine."""
    # Rounded: sums of the same terms added in another order may differ in the last bit.
    return (
        -round(hit.fused_score or 0.0, 12),
        -hit.score,
        -(hit.bm25_score or 0.0),
        -(hit.dense_score or 0.0),
    )


def rerank_hits(model: Any, query: str, hits: list[Hit], k: int) -> list[Hit]:
    """The ``k`` best hits by a sentence-transformers CrossEncoder; ``score`` becomes its score."""
    if not hits:
        return []
    import numpy as np

    raw = np.asarray(model.predict([(query, hit.text) for hit in hits], show_progress_bar=False))
    # One output per pair is a relevance score; with several (a classifier), the last is "relevant".
    scores = raw.reshape(len(hits), -1)[:, -1]
    for hit, value in zip(hits, scores, strict=True):
        hit.rerank_score = hit.score = float(value)
    return sorted(hits, key=lambda h: h.score, reverse=True)[:k]


def search(kb: KnowledgeBase, query: str, k: int, mode: str, rerank: bool | None) -> list[Hit]:
    """``KnowledgeBase.search``: see there."""
    settings = kb.settings
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if k <= 0:
        raise ConfigError(f"k must be > 0, got {k}")
    if not query.strip():
        raise LadderError("the query is empty")
    use_reranker = settings.reranker_model is not None if rerank is None else rerank
    if use_reranker and not settings.reranker_model:
        raise ConfigError(
            "reranking was asked for but no reranker is configured",
            hint="set reranker_model to a sentence-transformers CrossEncoder folder",
        )
    if mode != "bm25":
        kb._model_path()  # refuse a different embedding model, even on an empty knowledge base
    kb._refresh()
    if not kb.bm25.ids:
        return []
    depth = max(CANDIDATES, k, RERANK_DEPTH if use_reranker else 0)

    query_vector = None
    dense: list[str] = []
    if mode != "bm25":
        query_vector = kb._embed([query])[0]
        found = kb.collection.query(
            query_embeddings=[query_vector], include=["distances"], n_results=min(depth, len(kb.bm25.ids))
        )
        dense = list(found["ids"][0])
    query_tokens = tokenize(query)
    bm25_scores = kb.bm25.scores(query_tokens)
    lexical: list[str] = []
    if mode != "dense" and bm25_scores is not None:
        import numpy as np

        top = (
            np.argpartition(-bm25_scores, depth)[:depth]
            if len(bm25_scores) > depth
            else np.arange(len(bm25_scores))
        )
        top = top[np.argsort(-bm25_scores[top], kind="stable")]
        lexical = [kb.bm25.ids[i] for i in top if bm25_scores[i] > 0]

    dense_weight = kb.fusion.dense_weight_for(query, kb._model_covers_cjk())
    fused: dict[str, float] = {}
    bm25_rank = {chunk_id: r for r, chunk_id in enumerate(lexical, start=1)}
    keep = depth if use_reranker else k
    if mode == "hybrid":
        places = kb.fusion.bm25_places(bm25_scores, depth) if bm25_scores is not None else []
        tied = [kb.bm25.ids[p] for p, _first, _last in places]
        bm25_rank = {kb.bm25.ids[p]: first for p, first, _last in places}
        fused = dict(kb.fusion.fuse(dense, tied, dense_weight, [(f, last) for _p, f, last in places]))
        order = list(fused)
        # Chunks tied with the last one kept come along, so relevance, not chunk id, picks.
        while keep < len(order) and round(fused[order[keep]], 12) == round(fused[order[keep - 1]], 12):
            keep += 1
    else:
        order = dense if mode == "dense" else lexical
    ranks = _Ranks(dense, bm25_rank, fused, dense_weight)
    hits = _hits(kb, order[:keep], query_tokens, query_vector, bm25_scores, ranks)
    if mode == "hybrid":
        hits = sorted(hits, key=_fused_order)[: depth if use_reranker else k]
    if use_reranker:
        path = Path(str(settings.reranker_model)).expanduser()
        hits = rerank_hits(load_sentence_model(path, settings.device, cross_encoder=True), query, hits, k)
    return hits


@dataclass
class _Ranks:
    dense: list[str]
    bm25: dict[str, int]  # chunk id -> 1-based BM25 rank
    fused: dict[str, float]
    dense_weight: float


def _hits(
    kb: KnowledgeBase,
    ids: list[str],
    query_tokens: list[str],
    query_vector: np.ndarray | None,
    bm25_scores: Any,
    ranks: _Ranks,
) -> list[Hit]:
    """Hits for chunk ids, in order, with every signal filled in."""
    if not ids:
        return []
    import numpy as np

    include = ["documents", "metadatas"] + (["embeddings"] if query_vector is not None else [])
    stored = kb.collection.get(ids=ids, include=include)
    rows = {chunk_id: row for row, chunk_id in enumerate(stored["ids"])}
    positions = kb.bm25.positions()
    found = [chunk_id for chunk_id in ids if chunk_id in rows]  # others were removed meanwhile
    coverages = dict(
        zip(found, kb.bm25.coverage(query_tokens, [positions.get(c) for c in found]), strict=True)
    )
    dense_rank = {chunk_id: r for r, chunk_id in enumerate(ranks.dense, start=1)}
    hits = []
    for chunk_id in found:
        row = rows[chunk_id]
        text, meta = stored["documents"][row], stored["metadatas"][row]
        cosine = None
        if query_vector is not None:
            cosine = float(np.dot(np.asarray(stored["embeddings"][row]), query_vector))
        position = positions.get(chunk_id)
        raw_bm25 = float(bm25_scores[position]) if bm25_scores is not None and position is not None else 0.0
        coverage = coverages[chunk_id]
        hits.append(
            Hit(
                text=text,
                source=str(meta["source"]),
                page=meta.get("page"),
                chunk=int(meta["chunk"]),
                score=kb.fusion.relevance(cosine, coverage, ranks.dense_weight),
                chunk_id=chunk_id,
                dense_rank=dense_rank.get(chunk_id),
                bm25_rank=ranks.bm25.get(chunk_id),
                dense_score=cosine,
                bm25_score=raw_bm25,
                term_coverage=coverage,
                fused_score=ranks.fused.get(chunk_id),
            )
        )
    return hits


__all__ = ["MODES", "Fusion", "Hit", "cjk_share", "rerank_hits", "search", "source_name"]
