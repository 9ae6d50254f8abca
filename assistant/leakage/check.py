"""The leakage check: does a training text repeat a question of an evaluation suite?

    index = QuestionIndex(questions)          # EvalQuestion(suite, item_id, text), see ``suites``
    leak = index.find(["user turn", "alpaca input"])   # {suite, item, match, similarity} or None

A probe (a user turn, Alpaca's ``input``, the prompt of a preference pair) leaks when

- ``exact``: its normalised text is a question's (``text.normalized``);
- ``contains``: it contains a whole question of at least ``MIN_CONTAINED`` normalised characters
  ("Answer briefly: <question>"); in text mode (continued pre-training chunks) this is the
  only test, as a 2,000-character chunk is never a near duplicate of a question;
- ``near``: it is a near duplicate of a question (``text.near_forms``: the same numbers, a few
  characters apart in any order, most grams shared).

Candidates for ``near`` come from an inverted index over the questions' grams with a prefix
filter (a pair at the threshold shares at least ``FLOOR`` x the probe's grams, so it shares
one of the probe's rarest ``len - k + 1`` grams): every candidate is then scored exactly, so
nothing is missed and no score is an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.leakage.text import EDIT_RATE, FLOOR, MIN_CHARS, Form, form, near_forms, normalized

MIN_CONTAINED = 12  # normalised characters: shorter questions are phrases, not items
# The rule in words: a prepared-data manifest records it, so data prepared under another rule
# is prepared again rather than reused.
RULE = (
    f"exact; contains >= {MIN_CONTAINED} chars; near: same numbers, grams >= {FLOOR}, "
    f"1 + {EDIT_RATE}/char edits or reordered, >= {MIN_CHARS} chars"
)


@dataclass(frozen=True)
class EvalQuestion:
    suite: str
    item_id: str
    text: str


def leak_record(question: EvalQuestion, match: str, similarity: float) -> dict[str, Any]:
    return {"suite": question.suite, "item": question.item_id, "match": match,
            "similarity": round(similarity, 3)}  # fmt: skip


class QuestionIndex:
    """The questions of the evaluation suites, ready to be compared with training texts."""

    def __init__(
        self,
        questions: Sequence[EvalQuestion],
        rate: float = EDIT_RATE,
        floor: float = FLOOR,
        min_chars: int = MIN_CHARS,
    ) -> None:
        if not 0 < floor <= 1 or rate < 0 or min_chars < 1:
            raise ValueError(
                f"need 0 < floor <= 1, rate >= 0, min_chars >= 1; got {floor}, {rate}, {min_chars}"
            )
        self.rate, self.floor, self.min_chars = rate, floor, min_chars
        self.questions = list(questions)
        self.exact: dict[str, EvalQuestion] = {}
        self._forms: list[Form] = []
        self._owner: list[EvalQuestion] = []
        self._postings: dict[str, list[int]] = {}
        self._contained: list[tuple[str, EvalQuestion]] = []
        for question in self.questions:
            key = normalized(question.text)
            if not key:
                continue
            self.exact.setdefault(key, question)
            if len(key) >= MIN_CONTAINED:
                self._contained.append((key, question))
            number = len(self._forms)
            self._owner.append(question)
            self._forms.append(form(question.text))
            for gram in self._forms[-1].grams:
                self._postings.setdefault(gram, []).append(number)

    def __len__(self) -> int:
        return len(self.exact)

    def _near(self, probe: str) -> tuple[EvalQuestion, float] | None:
        probe_form = form(probe)
        present = [g for g in probe_form.grams if g in self._postings]
        need = max(1, math.ceil(self.floor * len(probe_form.grams) - 1e-9))
        if len(present) < need:
            return None
        present.sort(key=lambda g: len(self._postings[g]))
        candidates: set[int] = set()
        for gram in present[: len(present) - need + 1]:
            candidates.update(self._postings[gram])
        best: tuple[EvalQuestion, float] | None = None
        for number in sorted(candidates):
            score = near_forms(probe_form, self._forms[number], self.rate, self.floor, self.min_chars)
            if score is not None and (best is None or score > best[1]):
                best = (self._owner[number], score)
        return best

    def find(self, probes: Sequence[str], text_mode: bool = False) -> dict[str, Any] | None:
        """The evaluation item the probes leak, as ``{suite, item, match, similarity}``, or
        ``None``; the strongest kind of match over all probes (exact, then contains, then near)."""
        keys = [(probe, key) for probe in probes if (key := normalized(probe))]
        for _, key in keys:
            if key in self.exact:
                return leak_record(self.exact[key], "exact", 1.0)
        for _, key in keys:
            for question_key, question in self._contained:
                if question_key in key:
                    return leak_record(question, "contains", 1.0)
        if text_mode:
            return None
        best: tuple[EvalQuestion, float] | None = None
        for probe, _ in keys:
            near = self._near(probe)
            if near is not None and (best is None or near[1] > best[1]):
                best = near
        return leak_record(best[0], "near", best[1]) if best is not None else None


__all__ = ["MIN_CONTAINED", "RULE", "EvalQuestion", "QuestionIndex", "leak_record"]
