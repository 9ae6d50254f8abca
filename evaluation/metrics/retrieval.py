"""Retrieval metrics: hit@k and MRR of the retrieved contexts against the reference ones.

Matching rule. When both ``retrieved_context_ids`` and ``reference_context_ids`` are in the
sample, a retrieved context matches when its id is one of the reference ids. Otherwise the
texts are compared: both are tokenized as the lexical metrics do (normalised; CJK per
character, Latin per word) and a retrieved context matches a reference context when the
longest common token subsequence covers at least ``min_overlap`` (default 0.8) of the
*shorter* of the two. So a chunk that contains the whole reference passage matches, and so
does a chunk cut out of a longer reference passage, while small differences in whitespace,
punctuation or chunk edges are tolerated. The shorter side must also have at least
``min(5, len(longer))`` tokens, so a two-character chunk cannot match everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from evaluation.metrics.base import BaseMetric, Score, na
from evaluation.metrics.lexical import tokenize

MIN_TOKENS = 5


def contexts_match(retrieved: str, reference: str, min_overlap: float = 0.8) -> bool:
    from rapidfuzz.distance import LCSseq

    a, b = tokenize(retrieved), tokenize(reference)
    if not a or not b:
        return False
    shorter, longer = sorted((len(a), len(b)))
    if shorter < min(MIN_TOKENS, longer):
        return False
    return LCSseq.similarity(a, b) >= min_overlap * shorter


def first_match_rank(sample: Mapping[str, Any], min_overlap: float = 0.8, k: int | None = None) -> int | None:
    """The 1-based rank of the first retrieved context that matches a reference, or ``None``."""
    retrieved_ids = sample.get("retrieved_context_ids")
    reference_ids = sample.get("reference_context_ids")
    if retrieved_ids is not None and reference_ids:
        wanted = set(map(str, reference_ids))
        ranked: Sequence[bool] = [str(i) in wanted for i in retrieved_ids[:k]]
    else:
        references = sample.get("reference_contexts") or []
        ranked = [
            any(contexts_match(r, ref, min_overlap) for ref in references)
            for r in (sample.get("retrieved_contexts") or [])[:k]
        ]
    return next((rank for rank, hit in enumerate(ranked, start=1) if hit), None)


class _RetrievalMetric(BaseMetric):
    requires_any: ClassVar[tuple[str, ...]] = ("retrieved_contexts", "retrieved_context_ids")

    def __init__(self, k: int | None = None, min_overlap: float = 0.8) -> None:
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k <= 0):
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if not 0 < min_overlap <= 1:
            raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap!r}")
        self.k = k
        self.min_overlap = min_overlap

    def score(self, sample: Mapping[str, Any]) -> Score:
        has_ids = sample.get("retrieved_context_ids") is not None and sample.get("reference_context_ids")
        if not has_ids and not sample.get("reference_contexts"):
            return na("missing reference_contexts (or reference_context_ids)")
        if not has_ids and sample.get("retrieved_contexts") is None:
            return na("missing retrieved_contexts")
        return self.compute(sample)


class HitAtK(_RetrievalMetric):
    """1 when a reference context is among the top k retrieved (default k = 5)."""

    name: ClassVar[str] = "hit_at_k"

    def __init__(self, k: int | None = 5, min_overlap: float = 0.8) -> None:
        super().__init__(k if k is not None else 5, min_overlap)

    @property
    def label(self) -> str:
        return f"hit@{self.k}"

    def compute(self, sample: Mapping[str, Any]) -> Score:
        rank = first_match_rank(sample, self.min_overlap, self.k)
        return Score(float(rank is not None), detail={"rank": rank})


class MRR(_RetrievalMetric):
    """1 / rank of the first matching retrieved context (0 when none); all ranks unless ``k``."""

    name: ClassVar[str] = "mrr"

    @property
    def label(self) -> str:
        return "mrr" if self.k is None else f"mrr@{self.k}"

    def compute(self, sample: Mapping[str, Any]) -> Score:
        rank = first_match_rank(sample, self.min_overlap, self.k)
        return Score(0.0 if rank is None else 1.0 / rank, detail={"rank": rank})
