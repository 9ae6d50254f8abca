"""The item every part of an evaluation passes around: readers make it, strategies answer its
question, metrics score it, records and reports show it."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.types import Question


@dataclass
class SuiteItem:
    """One suite item: the ``Question`` a strategy answers plus what scoring needs.

    ``question.user_input`` is the bare question (what ragas and the report show) and
    ``question.choices`` the options, so a strategy that lists options itself does not see
    them twice. ``prompt`` is the full rendered prompt (k-shot exemplars, options and the
    answer cue) for logprob scoring or a plain generate. For MCQ, ``question.reference`` and
    ``reference_letter`` are the answer letter (``None`` when the split has no answers).
    ``question.tags`` also carries ``subject:<s>`` and ``category:<c>`` for filtering.
    """

    question: Question
    prompt: str = ""
    subject: str | None = None
    category: str | None = None
    reference_letter: str | None = None
    reference_context_ids: list[str] | None = None
    source: str = ""  # "file:line", for reports and error messages
