"""Verifiers of a free-text answer's form: ``regex`` (matches a pattern) and ``labels`` (one of
the allowed labels, compared without case, spacing or trailing punctuation)."""

from __future__ import annotations

import re
from typing import ClassVar

from assistant.errors import ConfigError
from assistant.strategies.verifiers.base import Verdict, VerifierOptions
from assistant.types import Question


class RegexVerifier:
    name: ClassVar[str] = "regex"

    def __init__(self, options: VerifierOptions) -> None:
        if not options.pattern:
            raise ConfigError("the regex check needs `pattern`")
        try:
            self.pattern = re.compile(options.pattern)
        except re.error as exc:
            raise ConfigError(f"invalid regex pattern {options.pattern!r}: {exc}") from None

    def check(self, answer_text: str, question: Question) -> Verdict:
        if self.pattern.search(answer_text.strip()):
            return Verdict(True, "The answer has the required format.")
        return Verdict(False, f"The answer must match the regular expression: {self.pattern.pattern}")


def normal_label(text: str) -> str:
    """A label as compared: one space between words, no case, no quotes or closing punctuation."""
    collapsed = " ".join(text.split()).casefold()
    return collapsed.strip(" \t\"'`*.。!！:：")


class LabelsVerifier:
    name: ClassVar[str] = "labels"

    def __init__(self, options: VerifierOptions) -> None:
        if not options.labels:
            raise ConfigError("the labels check needs `labels`: the allowed answers")
        self.labels = [str(label) for label in options.labels]
        self.by_normal = {normal_label(label): label for label in self.labels}

    def check(self, answer_text: str, question: Question) -> Verdict:
        label = self.by_normal.get(normal_label(answer_text))
        if label is not None:
            return Verdict(True, f"{label!r} is an allowed label.", fixed=label)
        allowed = ", ".join(self.labels)
        return Verdict(False, f"Answer with exactly one of these labels and nothing else: {allowed}.")
