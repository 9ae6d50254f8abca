"""The comparable form of a question, and when two questions are the same question.

Every path into training (``finetune prepare``, ``finetune synthesize``, ``feedback promote``,
DPO pairs, a decision's fine-tune rung) asks this module whether a training text repeats an
evaluation question, so "the same question" means one thing everywhere.

- **Normalised**: ``assistant.text.normalize`` (NFKC, so full-width and half-width forms are
  one; case folded; punctuation and symbols dropped; whitespace collapsed), except that
  arithmetic operators are kept as words ("5 + 7" and "5 × 7" are different questions).
- **Numbers**: two texts that state different numbers, or the same numbers in another order,
  are different questions ("4 × 8 等于多少？" and "2 × 8 等于多少？"), however alike.
- **Grams**: character bigrams of a mostly-CJK text and character trigrams otherwise, of the
  normalised text with spaces dropped (a Chinese character carries about as much as a short
  English word; "return window" and "returnwindow" are one question).
- **Near duplicate**: the two texts state the same numbers, share at least ``FLOOR`` of the
  larger text's grams, and either are at most ``allowed_edits(length)`` edits apart or hold the
  same units in another order (a reordered clause). A unit is a character of a mostly-CJK text
  and a word otherwise: a Chinese character carries about as much as an English word, so one
  edit is a character substituted, inserted or deleted in Chinese, and a word (a typo, an added
  "please") in English (Levenshtein distance over the units). ``allowed_edits`` is one, plus
  ``EDIT_RATE`` per unit of the longer text; a text shorter than ``MIN_CHARS`` characters
  matches only exactly. Templated prompts that share a long instruction and differ in their own
  few words (a ticket, an entity) are many edits apart, so they stay apart however much of their
  text is shared, which a gram-overlap ratio alone cannot tell. Two questions one edit apart
  that ask different things ("青松会员" / "青禾会员") look the same to this rule: dropping such
  a training example is the cheap mistake, keeping a test question the dear one.

``EDIT_RATE`` and ``FLOOR`` were chosen on the questions of CMRC 2018 dev and checked on other
data (``benchmarks/leakage.py``; the numbers are in docs/fine-tuning.md, "Leakage").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from assistant.text import normalize

EDIT_RATE = 0.0  # edits allowed per unit of the longer text, after the first (0: one edit at any length)
FLOOR = 0.5  # the least share of the larger text's grams the two must share
MIN_CHARS = 5  # shorter normalised texts (spaces dropped) match only exactly
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Operators are punctuation to ``normalize``, but "5 + 7" and "5 × 7" are different
# questions: they become words first. A minus only between numbers or spaces, so that codes
# like QG-R5 keep reading as one token.
_OPERATORS = {"+": " plus ", "×": " times ", "*": " times ", "÷": " over ", "/": " over ",
              "=": " equals ", "<": " lt ", ">": " gt ", "%": " percent "}  # fmt: skip
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_OPERATOR = re.compile(r"[+×*÷/=<>%]|(?<=[\d\s])-(?=[\d\s])")


def normalized(text: str) -> str:
    """``normalize`` with arithmetic operators kept as words; what exact matches compare."""
    import unicodedata

    # NFKC first, so that full-width operators (＋, ＝) are the operators they stand for.
    text = unicodedata.normalize("NFKC", text)
    return normalize(_OPERATOR.sub(lambda m: _OPERATORS.get(m.group(), " minus "), text))


def text_hash(text: str) -> str:
    return hashlib.sha256(normalized(text).encode("utf-8")).hexdigest()


def numbers(text: str) -> tuple[str, ...]:
    """The numbers of a text, in order: near duplicates must state the same ones ("4 × 8"
    and "2 × 8" share most of their grams but are different questions)."""
    return tuple(_NUMBER.findall(normalized(text)))


def mostly_cjk(norm: str) -> bool:
    cjk = len(_CJK.findall(norm))
    return bool(cjk) and cjk * 2 >= len(norm.replace(" ", ""))


def compact(text: str) -> str:
    """The normalised text without spaces: what grams and edits are counted on."""
    return normalized(text).replace(" ", "")


def grams(text: str) -> frozenset[str]:
    """Character bigrams (mostly CJK) or trigrams of ``compact(text)``."""
    norm = normalized(text)
    size = 2 if mostly_cjk(norm) else 3
    flat = norm.replace(" ", "")
    if len(flat) <= size:
        return frozenset({flat}) if flat else frozenset()
    return frozenset(flat[i : i + size] for i in range(len(flat) - size + 1))


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared grams over the grams of the larger set (1.0 for two empty sets)."""
    return len(a & b) / max(len(a), len(b)) if a or b else 1.0


def allowed_edits(length: int, rate: float = EDIT_RATE) -> int:
    """Edits two texts may be apart when the longer has ``length`` units: one, plus ``rate`` per unit."""
    return 1 + int(rate * length)


@dataclass(frozen=True)
class Form:
    """What the near-duplicate rule compares of a text, computed once."""

    flat: str  # compact(text)
    grams: frozenset[str]
    numbers: tuple[str, ...]
    units: tuple[str, ...]  # its characters (CJK) or words (Latin), in order
    bag: tuple[str, ...]  # the units sorted: the same in any order


def form(text: str) -> Form:
    norm = normalized(text)
    flat = norm.replace(" ", "")
    units = tuple(flat) if mostly_cjk(norm) else tuple(norm.split())
    return Form(flat, grams(text), numbers(text), units, tuple(sorted(units)))


def near_forms(
    a: Form, b: Form, rate: float = EDIT_RATE, floor: float = FLOOR, min_chars: int = MIN_CHARS
) -> float | None:
    """The gram overlap of two texts when they are near duplicates, else ``None``."""
    if a.numbers != b.numbers:
        return None
    if min(len(a.flat), len(b.flat)) < min_chars:
        return 1.0 if a.flat == b.flat else None
    from rapidfuzz.distance import Levenshtein

    score = overlap(a.grams, b.grams)
    if score < floor:
        return None
    edits = allowed_edits(max(len(a.units), len(b.units)), rate)
    if a.bag == b.bag or Levenshtein.distance(a.units, b.units, score_cutoff=edits) <= edits:
        return score
    return None


def near_duplicate(
    a: str, b: str, rate: float = EDIT_RATE, floor: float = FLOOR, min_chars: int = MIN_CHARS
) -> float | None:
    """The gram overlap of ``a`` and ``b`` when they are near duplicates, else ``None``."""
    return near_forms(form(a), form(b), rate, floor, min_chars)


__all__ = [
    "EDIT_RATE",
    "FLOOR",
    "MIN_CHARS",
    "Form",
    "allowed_edits",
    "compact",
    "form",
    "grams",
    "mostly_cjk",
    "near_duplicate",
    "near_forms",
    "normalized",
    "numbers",
    "overlap",
    "text_hash",
]
