"""The evaluation questions a leakage check compares training data with: every shipped suite
(``datasets/suites/*.yaml``) and every suite the caller names (a decision's dev and test, the
user's ``--suite``).

``assistant`` (and ``finetune``) may not import evaluation, so the suites are read by the
``SuiteQuestionReader`` the caller passes: ``evaluation.suites.source.SuiteFiles()``, whose
``suite`` method is this protocol's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from assistant.leakage.check import EvalQuestion
from assistant.resources import datasets_dir
from assistant.types import Question


class SuiteItemQuestion(Protocol):
    """What the leakage check uses of a suite item (``evaluation.items.SuiteItem``)."""

    @property
    def question(self) -> Question: ...

    @property
    def source(self) -> str: ...  # "file:line"


class SuiteQuestionReader(Protocol):
    def suite(self, path: Path) -> tuple[str, Sequence[SuiteItemQuestion]]:
        """A suite (a YAML, or a data file run as one): its name and items."""
        ...


@dataclass(frozen=True)
class SuiteInfo:
    name: str
    path: str
    items: int
    sha256: str


def project_suites_dir() -> Path:
    return datasets_dir() / "suites"


def project_suites() -> list[Path]:
    """The suites Ladder ships: always checked, whatever the caller names."""
    return sorted(project_suites_dir().glob("*.yaml"))


def load_eval_questions(
    suites: SuiteQuestionReader, extra: Iterable[Path] = (), include_project: bool = True
) -> tuple[list[EvalQuestion], list[SuiteInfo]]:
    """The questions of every shipped suite and of the ``extra`` suites, read with ``suites``;
    a suite named twice is read once."""
    paths: list[Path] = project_suites() if include_project else []
    seen = {p.resolve() for p in paths}
    for path in extra:
        if Path(path).resolve() not in seen:
            paths.append(Path(path))
            seen.add(Path(path).resolve())
    questions: list[EvalQuestion] = []
    infos: list[SuiteInfo] = []
    for path in paths:
        name, items = suites.suite(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        infos.append(SuiteInfo(name, str(path), len(items), digest))
        for item in items:
            questions.append(EvalQuestion(name, item.question.id or item.source, item.question.user_input))
    return questions, infos


__all__ = [
    "SuiteInfo",
    "SuiteItemQuestion",
    "SuiteQuestionReader",
    "load_eval_questions",
    "project_suites",
    "project_suites_dir",
]
