"""Where the pages look for suites and decision configs: the usual folders, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ui.web.common import REPO_ROOT

if TYPE_CHECKING:
    from assistant.settings import Settings


def _roots(settings: Settings) -> list[Path]:
    roots = [Path.cwd(), REPO_ROOT, settings.home]
    out: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def find_suites(settings: Settings) -> list[Path]:
    """Suite YAML files under ./suites, datasets/**/suites and LADDER_HOME/feedback."""
    found: dict[Path, None] = {}
    for root in _roots(settings):
        for pattern in (
            "suites/*.yaml",
            "datasets/suites/*.yaml",
            "datasets/*/suites/*.yaml",
            "feedback/*.yaml",
        ):
            for path in sorted(root.glob(pattern)):
                found.setdefault(path.resolve(), None)
    return list(found)


def find_decision_configs(settings: Settings) -> list[Path]:
    """Decision configs: YAML files with a ``rungs``/``targets`` mapping under the usual folders."""
    found: dict[Path, None] = {}
    for root in _roots(settings):
        for pattern in ("*.yaml", "decisions/*.yaml", "datasets/*/decisions/*.yaml", "ui/decisions/*.yaml"):
            for path in sorted(root.glob(pattern)):
                try:
                    head = path.read_text(encoding="utf-8", errors="replace")[:4000]
                except OSError:
                    continue
                if "targets:" in head and "suites:" in head:
                    found.setdefault(path.resolve(), None)
    return list(found)


def short(path: Path | str) -> str:
    """A path relative to the current folder or the repository when it is under one."""
    path = Path(path)
    for root in (Path.cwd().resolve(), REPO_ROOT):
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            continue
    return str(path)
