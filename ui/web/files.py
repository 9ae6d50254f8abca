"""Where the pages look for suites and decision configs: the usual folders, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.resources import datasets_dir

if TYPE_CHECKING:
    from assistant.settings import Settings

# Patterns under the current folder and LADDER_HOME, then under Ladder's own data (datasets/ in a
# checkout, ladder_datasets/ in an installed wheel), which ships the built-in suites and the demo.
SUITE_PATTERNS = ("suites/*.yaml", "datasets/suites/*.yaml", "datasets/*/suites/*.yaml", "feedback/*.yaml")
BUILTIN_SUITE_PATTERNS = ("suites/*.yaml", "*/suites/*.yaml")
DECISION_PATTERNS = ("*.yaml", "decisions/*.yaml", "datasets/*/decisions/*.yaml", "ui/decisions/*.yaml")
BUILTIN_DECISION_PATTERNS = ("*/decisions/*.yaml",)


def _candidates(settings: Settings, patterns: tuple[str, ...], builtin: tuple[str, ...]) -> Iterator[Path]:
    for root, globs in ((Path.cwd(), patterns), (datasets_dir(), builtin), (settings.home, patterns)):
        for pattern in globs:
            yield from sorted(root.resolve().glob(pattern))


def find_suites(settings: Settings) -> list[Path]:
    """Suite YAML files under ./suites, datasets/**/suites, the built-in ones and LADDER_HOME/feedback."""
    found: dict[Path, None] = {}
    for path in _candidates(settings, SUITE_PATTERNS, BUILTIN_SUITE_PATTERNS):
        found.setdefault(path.resolve(), None)
    return list(found)


def find_decision_configs(settings: Settings) -> list[Path]:
    """Decision configs: YAML files with a ``rungs``/``targets`` mapping under the usual folders."""
    found: dict[Path, None] = {}
    for path in _candidates(settings, DECISION_PATTERNS, BUILTIN_DECISION_PATTERNS):
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:4000]
        except OSError:
            continue
        if "targets:" in head and "suites:" in head:
            found.setdefault(path.resolve(), None)
    return list(found)


def short(path: Path | str) -> str:
    """A path relative to the current folder, or to the folder holding Ladder's own data
    (``datasets/suites/demo_qa.yaml`` in a checkout), when it is under one."""
    path = Path(path)
    for root in (Path.cwd().resolve(), datasets_dir().parent.resolve()):
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            continue
    return str(path)
