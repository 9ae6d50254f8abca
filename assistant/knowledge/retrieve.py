"""Search results, the fusion of dense and BM25 rankings, and reranking (``rerank.py``).

Fusion (``fusion.py``) is by default convex: the BM25 score and the cosine, each on a 0..1
scale for the query, added with BM25 weighed by its evidence; weighted reciprocal rank fusion
(``method="rrf"``) adds ``w / (k + rank)`` from each ranking instead. The dense weight depends
on whether the embedding model knows the query's language (see ``Fusion``).

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
chunk contains. ``Hit.score`` combines them into one number in [0, 1] (a CrossEncoder reranker
replaces it with its own score; the LLM reranker keeps it), which is what a "not in the
knowledge base" threshold should use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError, LadderError
from assistant.knowledge.embeddings import QUERY
from assistant.knowledge.fusion import Fusion, cjk_share
from assistant.knowledge.rerank import rerank_hits, reranker_for
from assistant.knowledge.store import tokenize

if TYPE_CHECKING:
    import numpy as np

    from assistant.knowledge.index import KnowledgeIndex

MODES = ("hybrid", "dense", "bm25")
# How many candidates each retriever contributes to fusion (a reranker reads its own ``depth``).
CANDIDATES = 50


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
    fused_score: float | None = None  # the fused score, 1.0 = best in both lists (hybrid mode)
    # The reranker's score, when reranked (CrossEncoder: its raw score, also in ``score``; LLM:
    # P(yes) in [0, 1], ``score`` kept).
    rerank_score: float | None = None

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


def order_score(hit: Hit, mode: str) -> float:
    """The score a search's hits are ordered by: the reranker's when they were reranked, else the
    fused score (hybrid), the cosine (dense) or the BM25 score. ``Hit.score`` (relevance) is the
    absolute score a threshold compares, and may disagree with this order."""
    if hit.rerank_score is not None:
        return float(hit.rerank_score)
    value = {"hybrid": hit.fused_score, "dense": hit.dense_score, "bm25": hit.bm25_score}[mode]
    return float(value or 0.0)


def _fused_order(hit: Hit) -> tuple[float, ...]:
    """Hybrid order: fused score, then (for ties) relevance, BM25 score and cosine."""
    # Rounded: sums of the same terms added in another order may differ in the last bit.
    return (
        -round(hit.fused_score or 0.0, 12),
        -hit.score,
        -(hit.bm25_score or 0.0),
        -(hit.dense_score or 0.0),
    )


def search(kb: KnowledgeIndex, query: str, k: int, mode: str, rerank: bool | None) -> list[Hit]:
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
            hint="set reranker_model to a sentence-transformers CrossEncoder folder, 'llm' (the configured "
            "model) or 'llm:<model reference>'",
        )
    reranker = reranker_for(settings) if use_reranker else None
    if mode != "bm25":
        kb.model_path()  # refuse a different embedding model, even on an empty knowledge base
    kb.refresh()
    if not kb.bm25.ids:
        return []
    depth = max(CANDIDATES, k, reranker.depth if reranker is not None else 0)

    query_vector = None
    dense: list[str] = []
    cosines: dict[str, float] = {}
    if mode != "bm25":
        query_vector = kb.embed([query], side=QUERY)[0]
        found = kb.collection.query(
            query_embeddings=[query_vector], include=["distances"], n_results=min(depth, len(kb.bm25.ids))
        )
        dense = list(found["ids"][0])
        # Chroma's cosine distance is 1 - cosine.
        cosines = {chunk_id: 1.0 - float(d) for chunk_id, d in zip(dense, found["distances"][0], strict=True)}
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

    dense_weight = kb.fusion.dense_weight_for(query, kb.model_covers_cjk())
    fused: dict[str, float] = {}
    bm25_rank = {chunk_id: r for r, chunk_id in enumerate(lexical, start=1)}
    keep = depth if use_reranker else k
    if mode == "hybrid":
        places = kb.fusion.bm25_places(bm25_scores, depth) if bm25_scores is not None else []
        tied = [kb.bm25.ids[p] for p, _first, _last in places]
        bm25_rank = {kb.bm25.ids[p]: first for p, first, _last in places}
        if kb.fusion.method == "rrf":
            fused = dict(kb.fusion.fuse(dense, tied, dense_weight, [(f, last) for _p, f, last in places]))
        else:
            fused = dict(_convex(kb, query_tokens, query_vector, cosines, tied, bm25_scores, dense_weight))
        order = list(fused)
        # Chunks tied with the last one kept come along, so relevance, not chunk id, picks.
        while keep < len(order) and round(fused[order[keep]], 12) == round(fused[order[keep - 1]], 12):
            keep += 1
    else:
        order = dense if mode == "dense" else lexical
    ranks = _Ranks(dense, bm25_rank, fused, dense_weight)
    hits = _hits(kb, order[:keep], query, query_tokens, query_vector, bm25_scores, ranks)
    if mode == "hybrid":
        hits = sorted(hits, key=_fused_order)[: depth if use_reranker else k]
    if reranker is not None:
        hits = reranker.rerank(query, hits, k)
    return hits


def _convex(
    kb: KnowledgeIndex,
    query_tokens: list[str],
    query_vector: np.ndarray | None,
    cosines: dict[str, float],
    lexical: list[str],
    bm25_scores: Any,
    dense_weight: float,
) -> list[tuple[str, float]]:
    """``Fusion.combine`` over the dense and BM25 candidates, each scored by both retrievers."""
    import numpy as np

    floor = min(cosines.values()) if cosines else None
    cosines = dict(cosines)
    missing = [chunk_id for chunk_id in lexical if chunk_id not in cosines]
    if missing and query_vector is not None:
        stored = kb.collection.get(ids=missing, include=["embeddings"])
        for chunk_id, vector in zip(stored["ids"], stored["embeddings"], strict=True):
            cosines[chunk_id] = float(np.dot(np.asarray(vector), query_vector))
    positions = kb.bm25.positions()
    bm25: dict[str, float] = {}
    evidence = 1.0
    if bm25_scores is not None:
        for chunk_id in set(cosines) | set(lexical):
            position = positions.get(chunk_id)
            if position is not None:
                bm25[chunk_id] = float(bm25_scores[position])
        if lexical:  # how much of the question BM25's best chunk holds
            evidence = kb.bm25.coverage(query_tokens, [positions.get(lexical[0])])[0]
    return kb.fusion.combine(cosines, bm25, floor, dense_weight, evidence)


@dataclass
class _Ranks:
    dense: list[str]
    bm25: dict[str, int]  # chunk id -> 1-based BM25 rank
    fused: dict[str, float]
    dense_weight: float


def _hits(
    kb: KnowledgeIndex,
    ids: list[str],
    query: str,
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
        scale = (0.0, 1.0)
        if query_vector is not None:
            cosine = float(np.dot(np.asarray(stored["embeddings"][row]), query_vector))
            scale = kb.cosine_scale(query, text)
        position = positions.get(chunk_id)
        raw_bm25 = float(bm25_scores[position]) if bm25_scores is not None and position is not None else 0.0
        coverage = coverages[chunk_id]
        hits.append(
            Hit(
                text=text,
                source=str(meta["source"]),
                page=meta.get("page"),
                chunk=int(meta["chunk"]),
                score=kb.fusion.relevance(cosine, coverage, ranks.dense_weight, scale),
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


__all__ = ["MODES", "Fusion", "Hit", "cjk_share", "order_score", "rerank_hits", "search", "source_name"]
