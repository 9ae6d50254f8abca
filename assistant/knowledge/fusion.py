"""How the dense and BM25 results of a search are fused (``Fusion``), and how much a query's
language leaves to each of them.

Two fusions are offered. ``convex`` (the default) adds the two scores after putting each on
a 0..1 scale for this query: the BM25 score over the best BM25 score, the cosine between
the lowest and the highest cosine of the dense candidates. ``rrf`` (weighted reciprocal rank
fusion) adds ``w / (k + rank)`` from each ranking and ignores the scores. Rank fusion
throws the margins away: a chunk that holds every word of the query (BM25 score 1.37, the
next one 0.02) earns no more for it than a chunk that is first by a hair, so chunks that are
merely good in both lists overtake the only real match. Score fusion keeps the margins, and
``fused_order`` breaks equal fused scores by the component scores. The dense weight depends
on whether the embedding model knows the query's language (see ``Fusion``). ``retrieve.py``
explains what a BM25 rank must mean.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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


FUSION_METHODS = ("convex", "rrf")


@dataclass(frozen=True)
class Fusion:
    """How a hybrid search fuses its two lists: ``convex`` score fusion (``combine``, the
    default) or weighted reciprocal rank fusion (``fuse``, ``method="rrf"``), with the dense
    weight set per query by language.

    Convex fusion at weights 1:1, with BM25's weight scaled by its evidence (``combine``), was
    chosen with ``benchmarks/retrieval.py --tune`` on the project's paraphrase set among 300
    CMRC distractors, where BM25 at full weight pulled hybrid below dense alone, and checked on
    CMRC 2018 dev and the English-to-Chinese set (docs/knowledge-bases.md, retrieval quality).

    An embedding model is only as good as the languages it was trained on: the packaged
    all-MiniLM-L6-v2 is English-only and on Chinese (CMRC 2018 dev) has the right passage
    in its top 5 for 11% of questions, against 99% for BM25. Any fixed dense weight large
    enough to matter in English hurts Chinese, so the dense weight is ``dense_weight`` for a
    query in a language the model covers, and ``foreign_dense_weight`` for a Chinese, Japanese
    or Korean query (see ``cjk_share``) when the model card's ``language`` list does not name
    one of them (a model without a card is trusted). At 0.05 dense only breaks near-ties in
    BM25's ranking. For rank fusion, ``k`` is 10 rather than the customary 60 so that top
    ranks count: at 60 even a 0.05 dense weight pulls CMRC recall@1 down from 0.96 to 0.90.
    """

    method: str = "convex"
    k: float = 10.0
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    foreign_dense_weight: float = 0.05
    # BM25 scores under this share of the best score count as no match, and scores closer
    # than ``tie_tolerance`` x the best score are ties (see ``bm25_places``).
    bm25_floor: float = 0.01
    tie_tolerance: float = 1e-9

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {', '.join(FUSION_METHODS)}, got {self.method!r}")
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

    def combine(
        self,
        cosines: Mapping[str, float],
        bm25: Mapping[str, float],
        dense_floor: float | None,
        dense_weight: float | None = None,
        bm25_evidence: float = 1.0,
    ) -> list[tuple[str, float]]:
        """Convex fusion: chunk ids by ``(wd * dense + wb * bm25) / (wd + wb)``, best first.

        ``bm25_evidence`` (0..1) scales BM25's weight: how much of the question BM25's best
        chunk holds (its ``term_coverage``). A BM25 list whose best chunk shares one word with a
        paraphrased question, or none of an English question about Chinese text, ranks noise;
        scaled by 1 it would outvote the dense order, scaled by its evidence it does not. A
        chunk with all the question's rare words keeps BM25's full weight, so an exact keyword
        match still comes first.

        ``cosines``: every candidate's cosine to the query (dense and BM25 candidates alike);
        ``bm25``: every candidate's BM25 score. The dense part is the cosine scaled between
        ``dense_floor`` (the lowest cosine of the dense candidate list, so the scale follows
        the model: e5's cosines bunch between 0.7 and 0.93, MiniLM's spread from 0 to 0.8)
        and the best cosine; the BM25 part is the score over the best score, and a score
        under ``bm25_floor`` of the best counts as 0, as in ``bm25_places``. 1.0 = best in both.
        Equal fused scores are ordered by BM25 score, then cosine, then chunk id.
        """
        dense_weight = self.dense_weight if dense_weight is None else dense_weight
        ids = set(cosines) | set(bm25)
        top_bm25 = max(bm25.values(), default=0.0)
        top_cos = max(cosines.values(), default=None)
        floor = top_cos if dense_floor is None or top_cos is None else min(dense_floor, top_cos)
        spread = (top_cos - floor) if top_cos is not None and floor is not None else 0.0
        bm25_weight = self.bm25_weight * min(1.0, max(0.0, bm25_evidence))
        total = (dense_weight + bm25_weight) or 1.0
        scored = []
        for chunk_id in ids:
            raw = bm25.get(chunk_id, 0.0)
            lexical = raw / top_bm25 if top_bm25 > 0 and raw >= self.bm25_floor * top_bm25 else 0.0
            cosine = cosines.get(chunk_id)
            if cosine is None or floor is None:
                dense = 0.0
            elif spread > 0:
                dense = min(1.0, max(0.0, (cosine - floor) / spread))
            else:
                dense = 1.0 if cosine >= floor else 0.0
            fused = (dense_weight * dense + bm25_weight * lexical) / total
            scored.append((-round(fused, 12), -lexical, -dense, chunk_id, fused))
        scored.sort()
        return [(chunk_id, fused) for *_key, chunk_id, fused in scored]

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

    def relevance(
        self,
        dense_score: float | None,
        term_coverage: float | None,
        dense_weight: float,
        cosine_scale: tuple[float, float] = (0.0, 1.0),
    ) -> float:
        """Absolute relevance in [0, 1]: cosine and term coverage, weighted like the fusion.

        The cosine is put on the model's scale for the languages of the question and the
        chunk (``embeddings.cosine_scale``): ``(cosine - unrelated) / (answering - unrelated)``,
        clipped to [0, 1], so 0 means "no closer than unrelated text" and 1 "as close as a
        passage that answers" for every model.
        """
        parts = []
        if dense_score is not None:
            low, high = cosine_scale
            span = high - low if high > low else 1.0
            parts.append((dense_weight, max(0.0, min(1.0, (dense_score - low) / span))))
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


__all__ = ["CJK_QUERY_SHARE", "FUSION_METHODS", "Fusion", "cjk_share"]
