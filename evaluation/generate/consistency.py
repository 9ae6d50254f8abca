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
REFUSAL_REST = 3  # tokens beside a refusal phrase that still make a refusal ("the passages", "资料中")
# Words that join an answer's parts ("15 元，因为满 200 元才包邮"): a reference may use them
# though neither its passages nor the second answer do.
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


def agreement(reference: str, second: str) -> float:
    """The larger of token F1 and the share of the reference's tokens found in the second answer
    (a second answer that quotes the whole sentence around a short reference agrees with it)."""
    ours, theirs = tokenize(reference), tokenize(second)
    if not ours or not theirs:
        return 0.0
    remaining = list(theirs)
    found = 0
    for token in ours:
        if token in remaining:
            remaining.remove(token)
            found += 1
    return max(token_f1(second, reference), found / len(ours))


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
        if token in answered or _free(token):
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    context = "\n".join(passages)
    known = set(content_units(context)) | set(content_units(question)) | set(tokenize(context))
    for run in runs:
        piece = _join([tokens[i] for i in run])
        units = [u for u in content_units(piece) if u not in CONNECTIVES and u not in FREE_UNITS]
        if any(u not in known for u in units):
            return piece
    if runs and runs[-1] == [len(tokens) - 1] and _cut_word(tokens, context):
        return tokens[-1]
    return None


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
    flat = "".join(tokenize(context))
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
