"""Lexical answer metrics: exact match, contained answer, token F1, ROUGE-L and BLEU, all CJK-aware.

Chinese (and Japanese kana) is scored per character and Latin script per word, after
``assistant.text.normalize``: NFKC, case folding, punctuation dropped (ASCII and full-width), English
articles dropped, whitespace collapsed. ragas' own ``RougeScore`` and ``BleuScore`` are not
used: rouge_score's default tokenizer deletes every non-ASCII character and sacrebleu's
13a keeps a Chinese sentence as one token, so both score Chinese as 0 or 1. We compute
ROUGE-L ourselves and give sacrebleu our tokens. Scores are in 0..1 (BLEU too, not sacrebleu's 0..100).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from assistant.text import normalize
from evaluation.metrics.base import BaseMetric, Score

# CJK ideographs (incl. extensions and compatibility), kana: one token per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def tokenize(text: str) -> list[str]:
    """Normalised tokens: each CJK character alone, Latin/digit runs as words."""
    return _TOKEN.findall(normalize(text))


def _pair(sample: Mapping[str, Any]) -> tuple[str, str]:
    return str(sample["response"]), str(sample["reference"])


class ExactMatch(BaseMetric):
    name: ClassVar[str] = "exact_match"
    requires: ClassVar[tuple[str, ...]] = ("response", "reference")
    kinds: ClassVar[tuple[str, ...]] = ("qa",)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        response, reference = _pair(sample)
        # Compare token sequences so "北京 市" and "北京市" are the same answer.
        return Score(float(tokenize(response) == tokenize(reference)))


def token_f1(response: str, reference: str) -> float:
    """SQuAD-style F1 over ``tokenize`` tokens (multiset overlap)."""
    predicted, gold = tokenize(response), tokenize(reference)
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


class TokenF1(BaseMetric):
    name: ClassVar[str] = "token_f1"
    requires: ClassVar[tuple[str, ...]] = ("response", "reference")
    kinds: ClassVar[tuple[str, ...]] = ("qa",)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        return Score(token_f1(*_pair(sample)))


def contains_answer(response: str, reference: str) -> float:
    """1 when the reference's tokens appear, in order and contiguous, in the response's:
    "27" is in "3 × 9 = 27." but not in "270"; "禾风路" is in "禾风路 16 号"."""
    answer, gold = tokenize(response), tokenize(reference)
    if not gold:
        return float(not answer)
    return float(any(answer[i : i + len(gold)] == gold for i in range(len(answer) - len(gold) + 1)))


class ContainsAnswer(BaseMetric):
    """Short-answer correctness that forgives the wrapping ("The capital is Paris.") but not
    a wrong or missing answer. Suits references of a few tokens; long references belong to
    token_f1 or rouge_l."""

    name: ClassVar[str] = "contains_answer"
    requires: ClassVar[tuple[str, ...]] = ("response", "reference")
    kinds: ClassVar[tuple[str, ...]] = ("qa",)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        return Score(contains_answer(*_pair(sample)))


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Longest common subsequence length, O(len(a) * len(b)) time, O(len(b)) memory."""
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(response: str, reference: str) -> float:
    """ROUGE-L F-measure (LCS) over ``tokenize`` tokens.

    Computed here rather than with rouge_score: its tokenizer drops Chinese, and importing
    it pulls in absl, whose logging handler takes over the root logger.
    """
    hypothesis, gold = tokenize(response), tokenize(reference)
    lcs = _lcs_length(hypothesis, gold)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hypothesis), lcs / len(gold)
    return 2 * precision * recall / (precision + recall)


class RougeL(BaseMetric):
    name: ClassVar[str] = "rouge_l"
    requires: ClassVar[tuple[str, ...]] = ("response", "reference")
    kinds: ClassVar[tuple[str, ...]] = ("qa",)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        return Score(rouge_l(*_pair(sample)))


def bleu(response: str, reference: str) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) over ``tokenize`` tokens, in 0..1."""
    from sacrebleu.metrics import BLEU

    hypothesis, gold = " ".join(tokenize(response)), " ".join(tokenize(reference))
    if not hypothesis or not gold:
        return float(hypothesis == gold)
    scorer = BLEU(tokenize="none", effective_order=True)
    # sacrebleu reports 0..100 and can overshoot 100 by a rounding ulp.
    return min(1.0, float(scorer.sentence_score(hypothesis, [gold]).score) / 100.0)


class Bleu(BaseMetric):
    name: ClassVar[str] = "bleu"
    requires: ClassVar[tuple[str, ...]] = ("response", "reference")
    kinds: ClassVar[tuple[str, ...]] = ("qa",)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        return Score(bleu(*_pair(sample)))
