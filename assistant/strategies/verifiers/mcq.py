"""The ``mcq`` verifier: the answer names exactly one of the question's option letters.

``McqVerifier.extract`` is also how exam scoring reads a generated answer
(``evaluation.metrics.mcq``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from assistant.strategies.verifiers.base import Verdict, VerifierOptions
from assistant.strategies.verifiers.text import normal_label
from assistant.types import Question

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Phrases that name the answer: "答案是B", "选B", "the answer is (C)", "Option D".
_EXPLICIT = [
    re.compile(r"答案\s*(?:应该|應該)?\s*(?:是|为|為|选|選)?\s*[:：]?\s*[(（\[]?\s*([A-Za-z])(?![A-Za-z])"),
    re.compile(r"(?:选|選)(?:择|擇|项|項)?\s*[:：]?\s*[(（\[]?\s*([A-Za-z])(?![A-Za-z])"),
    re.compile(r"[Aa]nswer\s*(?:is|:|=|：)?\s*(?:[Oo]ption\s*)?[(\[]?\s*([A-Z])(?![A-Za-z])"),
    re.compile(r"(?:[Oo]ption|[Cc]hoice)\s*(?:is\s*)?[(\[]?([A-Z])(?![A-Za-z])"),
]
_WHOLE = re.compile(r"^[\W_]*([A-Za-z])[\W_]*$")
_LEADING = re.compile(r"^\s*[*(\[（]*([A-Z])[*)\]）]*\s*(?:[.．、:：)）]|$)")
_STANDALONE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z'])")
# "A cat ..." and "I think ..." use A and I as words, not option letters ("A is", "A or B" do not).
_WORD_LETTER = re.compile(
    r"(?<![A-Za-z])([AI])(?= (?!(?:and|or|nor|is|are|was|were|vs|seems|looks|fits)\b)[a-z])"
)


class McqVerifier:
    name: ClassVar[str] = "mcq"

    def __init__(self, options: VerifierOptions) -> None:
        pass

    @staticmethod
    def extract(answer_text: str, choices: list[str]) -> tuple[str | None, str]:
        """The chosen letter, or ``None`` and the reason."""
        valid = LETTERS[: len(choices)]
        text = answer_text.strip()
        for pattern in _EXPLICIT:
            found = [m.upper() for m in pattern.findall(text)]
            if not found:
                continue
            letters = sorted(set(found))
            if len(letters) > 1:
                return None, f"the answer names several options ({', '.join(letters)})"
            if letters[0] not in valid:
                return None, f"{letters[0]} is not one of the options"
            return letters[0], ""
        for pattern in (_WHOLE, _LEADING):
            match = pattern.match(text)
            if match and match.group(1).upper() in valid:
                return match.group(1).upper(), ""
        normal = normal_label(text)
        for letter, choice in zip(valid, choices, strict=False):
            if normal and normal == normal_label(choice):
                return letter, ""
        words = {m.start() for m in _WORD_LETTER.finditer(text)}
        standalone = {m.group(1) for m in _STANDALONE.finditer(text) if m.start() not in words}
        letters = sorted(standalone & set(valid))
        if len(letters) == 1:
            return letters[0], ""
        if letters:
            return None, f"the answer names several options ({', '.join(letters)})"
        return None, "the answer names no option letter"

    def check(self, answer_text: str, question: Question) -> Verdict:
        if not question.choices:
            return Verdict(True, "Skipped: the question has no options.")
        letter, reason = self.extract(answer_text, question.choices)
        if letter is not None:
            return Verdict(True, f"The answer chooses option {letter}.", fixed=letter)
        valid = ", ".join(LETTERS[: len(question.choices)])
        return Verdict(False, f"Invalid choice: {reason}. Answer with exactly one option letter ({valid}), "
                              f"for example 'Answer: {LETTERS[0]}'.")  # fmt: skip
