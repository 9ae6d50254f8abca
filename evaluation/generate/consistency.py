"""The second pass: the generator answers each generated question from its passages only, and an
item whose reference does not follow from them is dropped.

The first-pass checks (``evaluation.generate.checks``) are lexical: an answer whose words are in
the passages passes, even when it answers another question ("自签收之日起 30 天内…可无理由退货？"
answered "15 天，因为入职满五年后…") or ends in the middle of a word ("2400 元升", from "满 2400 元
升为青禾会员"). Here the question is asked again, closed-book on its passages (prompt:
``prompts.answer_messages``), and the reference is compared with that second answer:

- ``unanswerable``: the second answer says the passages do not give one ("资料未提及").
- ``answer_mismatch``: numbers disagree (``quantities.numbers_disagree``: "15 天" against
  "30 天", or a numeric reference against a second answer with no number), or the two share too
  little: the larger of token F1 and the share of the reference's tokens found in the second
  answer (the project's lexical tokens: CJK characters, Latin words) is under
  ``AnswerCheck.min_agreement``.
- ``stray_text``: the reference carries text the second answer lacks and that does not come
  from the passages: content found in neither (a word the generator made up), or a last
  character cut off a longer word of the passage (the "升" of "元升为", which a character-level
  test finds in the passage: the reference stops where the passage's word goes on).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.knowledge.store import STOPWORDS
from assistant.types import GenParams
from evaluation.generate.checks import FREE_UNITS, content_units, extract_qa
from evaluation.generate.prompts import NOT_STATED, answer_messages
from evaluation.generate.quantities import numbers_disagree
from evaluation.metrics.lexical import token_f1, tokenize

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend

_PREFIX = re.compile(r"^\s*(?:answer|a|答案|答|回答)\s*[:：]\s*", re.IGNORECASE)
_FENCE = re.compile(r"```\w*")
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d|[零〇一二两三四五六七八九十百千万]")
_REFUSALS = (
    *NOT_STATED.values(), "未提及", "没有提到", "未提到", "没有提及", "无法回答", "not mentioned",
    "does not say", "do not say", "not given", "no information", "cannot be answered",
)  # fmt: skip
_ONE_CHAR_STOPWORDS = frozenset(w for w in STOPWORDS if len(w) == 1 and _CJK_CHAR.match(w))
SHORT_ANSWER = 6  # tokens: up to this long, an answer that says no is the opposite of one that does not
REFUSAL_REST = 3  # tokens beside a refusal phrase that still make a refusal ("the passages", "资料中")
# Words that join an answer's parts ("15 元，因为满 200 元才包邮"): a reference may use them
# though neither its passages nor the second answer do.
_NEGATION = re.compile(r"[不没无非否别未]|\b(?:no|not|cannot|never|none)\b|n't")
_NEGATION_TOKENS = frozenset({"不", "没", "未", "无", "非", "别", "否", "no", "not", "never", "cannot"})
CONNECTIVES = frozenset(
    {"因为", "所以", "因此", "但是", "而且", "并且", "只有", "才", "就", "需要", "须", "则", "即",
     "because", "so", "but", "only", "then", "since", "also", "therefore"}
)  # fmt: skip


@dataclass(frozen=True)
class AnswerCheck:
    """How strict the second pass is. Chosen on one generated set, checked on another (see
    docs/evaluation.md, "Generating a test suite")."""

    min_agreement: float = 0.5  # max(token F1, share of the reference's tokens in the second answer)
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.min_agreement <= 1:
            raise ValueError(f"min_agreement must be in 0..1, got {self.min_agreement}")
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be > 0, got {self.max_new_tokens}")


@dataclass(frozen=True)
class Candidate:
    """An item that passed the first-pass checks, waiting for its second answer."""

    question: str
    answer: str
    passages: tuple[str, ...]
    lang: str


def read_answer(reply: str) -> str:
    """The second answer in a reply: its first line, without "答案：" or a JSON wrapper; "" for
    a reply that says the passages do not give one."""
    text = _FENCE.sub("", reply).strip()
    parsed = extract_qa(text)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    text = parsed[1] if parsed is not None else first_line
    text = _PREFIX.sub("", text).strip()
    return "" if refuses(text) else text


def refuses(answer: str) -> bool:
    """An empty answer, or one that says the passages do not give it ("资料未提及", "not stated")."""
    folded = unicodedata.normalize("NFKC", answer).casefold()
    rest = folded
    for phrase in _REFUSALS:
        rest = rest.replace(phrase, " ")
    # Beside a refusal phrase, "the passages" is still a refusal; "refunds for gift cards are" (an
    # answer that happens to say "not given") is not.
    if rest != folded:
        return len(tokenize(rest)) <= REFUSAL_REST
    return not tokenize(answer)


def _share_found(ours: list[str], theirs: list[str]) -> float:
    """The share of ``ours`` (a multiset) found in ``theirs``."""
    remaining = list(theirs)
    found = 0
    for token in ours:
        if token in remaining:
            remaining.remove(token)
            found += 1
    return found / len(ours)


def agreement(reference: str, second: str) -> float:
    """How far two answers agree: the largest of token F1, the share of the reference's tokens
    found in the second answer (a second answer that quotes the sentence around a short
    reference), and the share of the second answer's tokens found in the reference (a reference
    that gives a reason after its answer: "15 元，因为满 200 元才包邮" against "15 元"). Opposite
    answers ("可以" and "不可以") can share every token: ``verdict`` tells them apart."""
    ours, theirs = tokenize(reference), tokenize(second)
    if not ours or not theirs:
        return 0.0
    return max(token_f1(second, reference), _share_found(ours, theirs), _share_found(theirs, ours))


def _opposite(reference: str, second: str) -> bool:
    """One answer says no where the other does not: two short answers of which one is negated
    ("不可以" against "可以": token F1 0.8), or one found inside the other right after a "不"
    or "not" ("可以" inside "不可以，因为定制商品不支持")."""
    ours, theirs = tokenize(reference), tokenize(second)
    if len(ours) <= SHORT_ANSWER and len(theirs) <= SHORT_ANSWER and _negated(reference) != _negated(second):
        return True
    return _after_negation(ours, theirs) or _after_negation(theirs, ours)


def _after_negation(part: list[str], whole: list[str]) -> bool:
    size = len(part)
    return any(
        whole[i : i + size] == part and i > 0 and whole[i - 1] in _NEGATION_TOKENS
        for i in range(len(whole) - size + 1)
    )


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(unicodedata.normalize("NFKC", text).casefold()))


def _free(token: str) -> bool:
    return token in STOPWORDS or token in FREE_UNITS or token in CONNECTIVES


def stray_text(reference: str, second: str, passages: Sequence[str], question: str = "") -> str | None:
    """The piece of the reference that neither the passages nor the second answer support, or None.

    The reference's tokens missing from the second answer form runs. A run is stray when one of
    its content units (``checks.content_units``: words, CJK bigrams) occurs in neither the
    passages nor the question, or when it is the reference's last token, a lone CJK character
    (not a unit after a number, not a common word) that the passages only ever continue with
    another CJK character: the reference cut a word of the passage in two.
    """
    tokens = tokenize(reference)
    answered = set(tokenize(second))
    runs: list[list[int]] = []
    for index, token in enumerate(tokens):
        if token in answered:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    context = "\n".join(passages)
    known = set(content_units(context)) | set(content_units(question)) | set(tokenize(context))
    for run in runs:
        piece = _join([tokens[i] for i in run])
        if any(u not in known for u in content_units(_without_glue(piece))):
            return piece
    last = runs[-1] if runs else []
    if last == [len(tokens) - 1] and not _free(tokens[-1]) and _cut_word(tokens, context):
        return tokens[-1]
    return None


def _without_glue(piece: str) -> str:
    """The piece without connectives and one-character common words (因为, 的, 和): what is left
    must come from the passages ("的带" of "十五天的带薪年假" is no bigram of "十五天带薪年假")."""
    for word in sorted(CONNECTIVES | FREE_UNITS | _ONE_CHAR_STOPWORDS, key=len, reverse=True):
        piece = (
            piece.replace(word, " ") if not word.isascii() else re.sub(rf"\b{re.escape(word)}\b", " ", piece)
        )
    return piece


def _join(tokens: list[str]) -> str:
    out = ""
    for token in tokens:
        glue = "" if not out or (_CJK_CHAR.match(token) and _CJK_CHAR.match(out[-1])) else " "
        out += glue + token
    return out


def _cut_word(tokens: list[str], context: str) -> bool:
    """The reference's last token is a lone CJK character that every occurrence in the passages,
    after the token before it, continues with another CJK character."""
    last = tokens[-1]
    if not _CJK_CHAR.fullmatch(last) or len(tokens) < 2 or _NUMBER.match(tokens[-2][-1]):
        return False  # "15 天": a unit after its number ends a word
    # Whitespace goes ("2400 元升" is "2400元升"), punctuation stays: a comma ends the word.
    flat = "".join(unicodedata.normalize("NFKC", context).casefold().split())
    tail = tokens[-2][-1] + last
    places = [m.end() for m in re.finditer(re.escape(tail), flat)]
    return bool(places) and all(p < len(flat) and _CJK_CHAR.match(flat[p]) for p in places)


def verdict(candidate: Candidate, second: str, limits: AnswerCheck) -> str | None:
    """Why the item is dropped (a reason of ``checks.REASONS``), or None to keep it."""
    if refuses(second):
        return "unanswerable"
    if (
        numbers_disagree(candidate.answer, second)
        or agreement(candidate.answer, second) < limits.min_agreement
        or _opposite(candidate.answer, second)
    ):
        return "answer_mismatch"
    if stray_text(candidate.answer, second, candidate.passages, candidate.question) is not None:
        return "stray_text"
    return None


def second_answers(backend: LLMBackend, candidates: Sequence[Candidate], limits: AnswerCheck) -> list[str]:
    """The generator's answer to each candidate's question from its passages only (greedy)."""
    if not candidates:
        return []
    prompts = [answer_messages(c.question, c.passages, c.lang) for c in candidates]
    completions = backend.generate(prompts, GenParams(max_new_tokens=limits.max_new_tokens))
    return [read_answer(c.text) for c in completions]


__all__ = [
    "AnswerCheck",
    "Candidate",
    "agreement",
    "read_answer",
    "refuses",
    "second_answers",
    "stray_text",
    "verdict",
]
