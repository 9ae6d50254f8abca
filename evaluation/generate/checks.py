"""Checks on generated question/answer pairs: JSON extraction, language, grounding, dedup.

A small model writes a question and an answer about a passage; most of what it writes is
usable, some is not: prose around the JSON, a truncated object, an English question about
a Chinese passage, an answer that is not in the passage. Each check here returns the
reason an item is rejected (one of ``REASONS``) or ``None``, so a run can count reasons.

Overlap is measured in content units (``content_units``), after the lexical metrics'
normalisation: Latin and digit words, and CJK character bigrams. Common words (``the``,
``is``, ``的``, ``是``) do not count. Words are compared as written, with no stemming, so an
answer that paraphrases ("refunds" for "refunded") scores lower than one that quotes; the
prompt asks for the passage's own words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.knowledge.fusion import cjk_share
from assistant.knowledge.store import STOPWORDS
from assistant.text import EN, ZH, ZH_SHARE, as_question, language, normalize
from evaluation.generate.quantities import contradicts_question
from evaluation.metrics.lexical import tokenize

# Why an item was rejected; the run reports a count for each.
REASONS = {
    "no_json": "no JSON object with a question and an answer in the reply",
    "empty": "question or answer empty",
    "not_a_question": "the question is not phrased as a question",
    "wrong_language": "not in the passage's language",
    "copied_example": "a copy of the prompt's worked example, not about the passage",
    "off_topic": "the question shares too little with the passage",
    "not_grounded": "the answer is not supported by the passage",
    "off_focus": "the answer is not in the sentence the question was to be about",
    "repeats_question": "the answer only repeats the question",
    "too_long": "the answer is too long (a copy of the passage, not an answer)",
    "one_passage": "a multi-hop item that uses only one of its two passages",
    "duplicate": "near-identical to a question already kept",
    "contradicts_question": "the answer replaces a number the question states with another of the same unit",
    # The second pass (evaluation.generate.consistency): the question answered from its passages only.
    "unanswerable": "answered from its passages only, the question got no answer (second pass)",
    "answer_mismatch": "answered from its passages only, the question got another answer (second pass)",
    "stray_text": "the answer carries text that neither its passages nor the second answer support",
}

# An answer this long (in tokens) that covers most of its passage is a copy of the passage;
# a shorter one may be the whole of a one-fact chunk.
COPY_MIN_TOKENS = 30
# Content-unit Jaccard with the worked example at which a reply is a copy of it.
COPIED_EXAMPLE = 0.5
# Answer words that need no support in the passage: a yes/no answer is still an answer.
FREE_UNITS = frozenset(
    {
        "yes",
        "no",
        "not",
        "true",
        "false",
        "是",
        "否",
        "不",
        "能",
        "可以",
        "不能",
        "不可",
        "不是",
        "是的",
        "没有",
    }
)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_UNIT = re.compile(rf"(?P<cjk>[{_CJK}]+)|[^\W_{_CJK}]+")
_WORDY = re.compile(r"[^\W_]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
_KEYS = {"question": ("question", "问题", "q"), "answer": ("answer", "答案", "a")}


def content_units(text: str) -> list[str]:
    """What overlap is counted in: Latin and digit words, and CJK character bigrams.

    Bigrams, not single characters: a few thousand characters make up most Chinese text,
    so an invented answer shares most of its characters with any passage on the topic
    ("三十天病假" against "十天年假"), but few of its bigrams. Common words and
    bigrams of common characters (``的是``) are not content.
    """
    units: list[str] = []
    for match in _UNIT.finditer(normalize(text)):
        piece = match.group(0)
        if match.group("cjk"):
            grams = [piece] if len(piece) == 1 else [piece[i : i + 2] for i in range(len(piece) - 1)]
            units.extend(g for g in grams if not all(ch in STOPWORDS for ch in g))
        elif piece not in STOPWORDS:
            units.append(piece)
    return units


# ---- JSON -------------------------------------------------------------------------------
def _field(obj: dict[str, Any], name: str) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in _KEYS[name]:
        value = lowered.get(key)
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value).strip()
    return None


def _string_value(text: str, name: str) -> str | None:
    """The value of ``"name": "..."`` even when the object around it is broken or cut off."""
    for key in _KEYS[name]:
        match = re.search(rf'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)"', text, re.IGNORECASE)
        if match:
            try:
                return str(json.loads(f'"{match.group(1)}"')).strip()
            except json.JSONDecodeError:
                return match.group(1).strip()
    return None


def extract_qa(reply: str) -> tuple[str, str] | None:
    """``(question, answer)`` from a model reply, or ``None``.

    Takes the first JSON object that has both fields, wherever it is in the reply (code
    fences and prose around it are ignored); failing that, reads the two string fields
    out of a malformed object (a missing brace, a trailing comma, a cut-off reply).
    """
    text = _FENCE.sub("", reply)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            question, answer = _field(obj, "question"), _field(obj, "answer")
            if question is not None and answer is not None:
                return question, answer
    question, answer = _string_value(text, "question"), _string_value(text, "answer")
    if question is not None and answer is not None:
        return question, answer
    return None


# ---- checks -----------------------------------------------------------------------------
def support(text: str, context: str) -> float:
    """The share of ``text``'s content units that occur in ``context`` (see ``content_units``)."""
    units = content_units(text)
    needed = [u for u in units if u not in FREE_UNITS]
    if not needed:
        return 1.0 if units else 0.0  # "Yes." is an answer; "the" is not
    # Single characters too: a one-character answer unit ("3 天") is no bigram of the passage.
    present = set(content_units(context)) | set(tokenize(context))
    return sum(u in present for u in needed) / len(needed)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Thresholds:
    """How strict the checks are. Defaults were set on the demo knowledge base."""

    min_answer_support: float = 0.6  # share of the answer's content tokens found in the passage
    # Share of the question's content units found in the passage. Low: a fair question uses
    # words of its own ("What is the name of the company's headquarters?" shares 1 of 4).
    min_question_support: float = 0.2
    max_answer_chars: int = 300
    max_answer_share: float = 0.7  # of the passage's tokens: more is a copy of the passage
    duplicate_jaccard: float = 0.8  # token-set similarity at which two questions are the same

    def __post_init__(self) -> None:
        for name in ("min_answer_support", "min_question_support", "max_answer_share", "duplicate_jaccard"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in 0..1, got {value}")
        if self.max_answer_chars <= 0:
            raise ValueError(f"max_answer_chars must be > 0, got {self.max_answer_chars}")


class Dedup:
    """Remembers kept questions; ``seen`` tells a near-identical one."""

    def __init__(self, jaccard: float) -> None:
        self.jaccard = jaccard
        self._kept: list[set[str]] = []

    def seen(self, question: str) -> bool:
        tokens = set(content_units(question))
        return any(_jaccard(tokens, other) >= self.jaccard for other in self._kept)

    def add(self, question: str) -> None:
        self._kept.append(set(content_units(question)))

    def forget(self, question: str) -> None:
        """Take back a question added before (a later check dropped its item)."""
        tokens = set(content_units(question))
        if tokens in self._kept:
            self._kept.remove(tokens)


def check(
    reply: str,
    passages: Sequence[str],
    lang: str,
    dedup: Dedup,
    limits: Thresholds,
    examples: Sequence[str] = (),
    focus: Sequence[str] = (),
) -> tuple[str, str] | str:
    """``(question, answer)`` when the reply passes every check, else the rejection reason.

    One passage: a single-hop item. Two: a multi-hop item, whose answer is checked against
    both passages together and whose question and answer must draw on each of them.
    ``examples`` are the texts of the prompt's worked example, which a small model copies.
    ``focus`` are the sentences the prompt asked about: the answer must come from them. A
    small model otherwise pairs a question about one sentence with a number from another
    ("出差结束后多久可以乘坐商务舱？" answered "15 天", the deadline for expense claims), and
    answers a question that states a number with another number of the same unit
    (``quantities.contradicts_question``).
    """
    parsed = extract_qa(reply)
    if parsed is None:
        return "no_json"
    raw_question, answer = parsed
    answer = " ".join(answer.split())
    if not _WORDY.search(raw_question) or not _WORDY.search(answer):  # "", "...", "……"
        return "empty"
    question = as_question(raw_question, lang)
    if question is None:
        return "not_a_question"
    if language(question) != lang or not _answer_language_fits(answer, lang):
        return "wrong_language"
    context = "\n".join(passages)
    if support(question, context) < limits.min_question_support:
        copied = set(content_units(question + " " + answer))
        if any(_jaccard(copied, set(content_units(e))) >= COPIED_EXAMPLE for e in examples):
            return "copied_example"
        return "off_topic"
    if content_units(answer) and set(content_units(answer)) <= set(content_units(question)):
        return "repeats_question"
    if support(answer, context) < limits.min_answer_support:
        return "not_grounded"
    if focus and support(answer, "\n".join(focus)) < limits.min_answer_support:
        return "off_focus"
    answer_tokens = len(tokenize(answer))
    if len(answer) > limits.max_answer_chars or (
        answer_tokens > COPY_MIN_TOKENS and answer_tokens > limits.max_answer_share * len(tokenize(context))
    ):
        return "too_long"
    if len(passages) == 2 and not _uses_both(question + " " + answer, passages[0], passages[1]):
        return "one_passage"
    if contradicts_question(question, answer, passages):
        return "contradicts_question"
    if dedup.seen(question):
        return "duplicate"
    return question, answer


def _answer_language_fits(answer: str, lang: str) -> bool:
    """A Chinese answer may be a number or a name ("15", "HR"), but not an English sentence."""
    if lang == EN:
        return cjk_share(answer) < ZH_SHARE
    return cjk_share(answer) > 0 or len(_LATIN_WORD.findall(answer)) <= 2


def _uses_both(text: str, first: str, second: str) -> bool:
    """Each passage contributes content tokens to ``text`` that the other passage lacks."""
    used = set(content_units(text))
    a, b = set(content_units(first)), set(content_units(second))
    return len(used & (a - b)) >= 1 and len(used & (b - a)) >= 1


__all__ = [
    "EN",
    "FREE_UNITS",
    "REASONS",
    "ZH",
    "Dedup",
    "Thresholds",
    "as_question",
    "check",
    "content_units",
    "extract_qa",
    "language",
    "support",
]
