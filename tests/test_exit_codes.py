"""The README's exit-code table and the code agree: every ``LadderError`` subclass exits with a
code the table lists, each "not found" error with exit 3 is named in row 3, and the table lists
no code the program never uses."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What each exit-3 error is about, as the README's row 3 must say it. A new exit-3 error fails
# this test until it is added here and to the table.
EXIT_3_NAMES = {
    "ModelNotFoundError": ("model", "pack", "adapter", "folder that is not a model"),
    "KnowledgeBaseNotFound": ("knowledge base",),
    "SourceNotFound": ("source",),
    "FeedbackNotFound": ("feedback id",),
}


def _readme_table() -> dict[int, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| exit code | meaning |")
    rows: dict[int, str] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        code, meaning = (cell.strip() for cell in line.strip("|").split("|", 1))
        rows[int(code)] = meaning
    return rows


def _ladder_errors() -> list[type]:
    """Every ``LadderError`` subclass: the modules that define error classes are imported."""
    from assistant.errors import LadderError

    pattern = re.compile(r"^class \w+\(\w*Error\):", re.MULTILINE)
    for package in ("assistant", "evaluation", "finetune"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if pattern.search(path.read_text(encoding="utf-8")):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                importlib.import_module(module)

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    return [LadderError, *subclasses(LadderError)]


def test_every_error_exits_with_a_documented_code() -> None:
    table = _readme_table()
    undocumented = [f"{c.__module__}.{c.__name__} exits {c.exit_code}" for c in _ladder_errors()
                    if c.exit_code not in table]  # fmt: skip
    assert undocumented == []


def test_row_3_names_every_kind_of_unknown_name_that_exits_3() -> None:
    row = _readme_table()[3]
    exit_3 = {c.__name__ for c in _ladder_errors() if c.exit_code == 3}
    assert exit_3 - set(EXIT_3_NAMES) == set(), "a new exit-3 error: name it in the README and here"
    for name in exit_3:
        for words in EXIT_3_NAMES[name]:
            assert words in row, f"{name}: {words!r} missing from the README's row 3: {row!r}"


def test_the_table_lists_no_code_the_program_never_uses() -> None:
    used = {c.exit_code for c in _ladder_errors()} | {130}  # 130: interrupted (Ctrl-C)
    assert set(_readme_table()) == used


def test_usage_errors_and_unknown_run_ids_are_row_2() -> None:
    from evaluation.store import RunNotFound

    row = _readme_table()[2]
    assert RunNotFound.exit_code == 2 and "run or decision id" in row
    assert "usage error" in row  # a missing argument or an unknown option (ui.cli.app.main)
