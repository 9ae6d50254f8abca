"""Suites as the floors below evaluation read them. ``finetune`` and ``assistant`` may not import
evaluation, yet fine-tuning checks its data against every suite (leakage) and reads QA
files and suites as training data, and feedback promotion extends a QA suite: their callers
(the CLI, the web views, the decision engine) pass a ``SuiteFiles``, which has the methods
of ``finetune.data.suites.SuiteReader`` and ``assistant.feedback.files.SuiteSpecReader``.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.items import SuiteItem
from evaluation.suites.readers import load_qa
from evaluation.suites.spec import SuiteSpec, load_suite, load_suite_spec


class SuiteFiles:
    """Reads suites with ``evaluation.suites``, errors (``SuiteError``) and all."""

    def suite(self, path: Path) -> tuple[str, list[SuiteItem]]:
        """A suite (a YAML, or a data file run as one): its name and its items, prompts rendered."""
        loaded = load_suite(path)
        return loaded.spec.name, loaded.items

    def qa_file(self, path: Path) -> list[SuiteItem]:
        """The items of a QA data file (JSONL or CSV with ``user_input`` and ``reference``)."""
        return load_qa(Path(path))

    def spec(self, path: Path) -> SuiteSpec:
        """A suite YAML, validated (metrics and thresholds too), without reading its data."""
        return load_suite_spec(path)


__all__ = ["SuiteFiles"]
