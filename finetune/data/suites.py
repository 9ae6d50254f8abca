"""What fine-tuning data reads from evaluation suites, through a reader its caller passes in.

finetune sits below evaluation and may not import it, yet two of its steps read suites: the
leakage check compares training data with the questions of every evaluation suite, and QA
data (a QA JSONL/CSV file, or a suite YAML) is read as evaluation reads it, errors and all.
The caller (the CLI, the decision engine, a test) passes
``evaluation.suites.source.SuiteFiles()``, which has the methods of ``SuiteReader``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from assistant.types import Question


class SuiteItemView(Protocol):
    """What fine-tuning uses of a suite item (``evaluation.items.SuiteItem``)."""

    @property
    def question(self) -> Question: ...

    @property
    def prompt(self) -> str: ...  # the rendered prompt: an MCQ item's question with its options

    @property
    def source(self) -> str: ...  # "file:line"


class SuiteReader(Protocol):
    def suite(self, path: Path) -> tuple[str, Sequence[SuiteItemView]]:
        """A suite (a YAML, or a data file run as one): its name and items."""
        ...

    def qa_file(self, path: Path) -> Sequence[SuiteItemView]:
        """The items of a QA data file (JSONL or CSV with ``user_input`` and ``reference``)."""
        ...


__all__ = ["SuiteItemView", "SuiteReader"]
