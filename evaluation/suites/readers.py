"""Readers for suite data files: QA (JSONL or CSV) and generic MCQ (JSONL).

Every reader returns ``SuiteItem``s and raises ``SuiteError`` naming the file, the line
(1-based, the line a CSV record or JSONL object starts on) and the column where there is
one; the records themselves are read by ``assistant.records_io``. Exam trees (C-Eval, MMLU,
CMMLU) have their own reader in ``evaluation.suites.exam``; the suite spec
(``evaluation.suites.spec``) decides which reader runs and renders prompts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant import records_io
from assistant.types import Question
from evaluation.items import SuiteItem
from evaluation.suites.errors import RELATIVE_TO_YAML, WHAT_A_SUITE_IS, SuiteError
from evaluation.suites.subjects import subject_category

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DATA_SUFFIXES = (".jsonl", ".csv")


# ---- records ----------------------------------------------------------------------------------
def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each non-blank line; a bad line is a ``SuiteError``."""
    return records_io.iter_jsonl(path, SuiteError, missing_hint=RELATIVE_TO_YAML)


def iter_csv(path: Path, header: bool = True) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    """``(start line, row)``: a dict by column name when ``header``, else the raw list."""
    return records_io.iter_csv(path, SuiteError, header=header, missing_hint=RELATIVE_TO_YAML)


def need(row: dict[str, Any], key: str, path: Path, line: int, hint: str | None = None) -> Any:
    """The value of a required field; missing or blank is a ``SuiteError``."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SuiteError("missing or empty", file=path, line=line, field=key, hint=hint)
    return value


def _string_list(value: Any, key: str, path: Path, line: int, from_csv: bool) -> list[str]:
    """A list of strings; in CSV a JSON array, or one plain string (``tags``: ``a;b``)."""
    if from_csv and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SuiteError(f"invalid JSON list: {exc.msg}", file=path, line=line, field=key) from None
        elif key == "tags":
            return [t.strip() for t in text.split(";") if t.strip()]
        else:
            return [text] if text else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError("expected a list of strings", file=path, line=line, field=key)
    return list(value)


class ItemIds:
    """Refuses a duplicate item id, naming where it first appeared."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def add(self, item_id: str, path: Path, line: int) -> None:
        if item_id in self.seen:
            raise SuiteError(
                f"duplicate id {item_id!r} (first at {self.seen[item_id]})",
                file=path,
                line=line,
                field="id",
                hint="ids must be unique within a suite",
            )
        self.seen[item_id] = f"{path}:{line}"


# ---- a data file run as a suite ----------------------------------------------------------------
def is_data_file(path: str | Path) -> bool:
    """A QA/MCQ data file (``.jsonl``, ``.csv``), which ``load_suite`` runs as a suite of its own."""
    return Path(path).suffix.lower() in DATA_SUFFIXES


def data_file_kind(path: Path) -> str:
    """The kind of suite a bare data file holds, from its first record: ``user_input`` → qa,
    ``question`` + ``options`` → mcq."""
    if not path.is_file():
        raise SuiteError("data file not found", file=path)
    from_csv = path.suffix.lower() == ".csv"
    first = next(iter(iter_csv(path) if from_csv else iter_jsonl(path)), None)
    if first is None:
        raise SuiteError("the data file has no items", file=path, hint=WHAT_A_SUITE_IS)
    line, row = first
    keys = set(row) if isinstance(row, dict) else set()
    if "user_input" in keys:
        return "qa"
    if {"question", "options"} <= keys and not from_csv:
        return "mcq"
    found = ", ".join(sorted(str(k) for k in keys)) or "no named fields"
    raise SuiteError(
        f"neither a suite nor suite data: the first record has {found}", file=path, line=line,
        hint=WHAT_A_SUITE_IS,
    )  # fmt: skip


# ---- QA ---------------------------------------------------------------------------------------
def load_qa(path: Path, ids: ItemIds | None = None) -> list[SuiteItem]:
    """QA items from ``.jsonl`` or ``.csv`` with ragas names: ``user_input``, ``reference``,
    optional ``reference_contexts`` (list), ``reference_context_ids``, ``id`` and ``tags``."""
    ids = ids or ItemIds()
    from_csv = path.suffix.lower() == ".csv"
    rows: Iterator[tuple[int, Any]] = iter_csv(path) if from_csv else iter_jsonl(path)
    items = []
    for line, row in rows:
        user_input = str(need(row, "user_input", path, line, hint="QA items need user_input and reference"))
        reference = row.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise SuiteError("expected a string", file=path, line=line, field="reference")
        contexts = ids_list = None
        if row.get("reference_contexts") not in (None, ""):
            contexts = _string_list(row["reference_contexts"], "reference_contexts", path, line, from_csv)
        if row.get("reference_context_ids") not in (None, ""):
            ids_list = _string_list(
                row["reference_context_ids"], "reference_context_ids", path, line, from_csv
            )
        tags = _string_list(row["tags"], "tags", path, line, from_csv) if row.get("tags") else []
        item_id = str(row["id"]) if row.get("id") not in (None, "") else f"{path.stem}-{line}"
        ids.add(item_id, path, line)
        question = Question(
            user_input=user_input,
            id=item_id,
            reference=reference or None,
            reference_contexts=contexts,
            tags=tags,
        )
        items.append(SuiteItem(question, reference_context_ids=ids_list, source=f"{path}:{line}"))
    return items


# ---- generic MCQ JSONL -----------------------------------------------------------------------
def load_mcq_jsonl(path: Path, ids: ItemIds | None = None) -> list[SuiteItem]:
    """``question``, ``options`` (list of >= 2 strings), ``label`` (letter or 0-based index),
    optional ``id``, ``subject``, ``tags``. No ``label`` means predictions only."""
    ids = ids or ItemIds()
    items = []
    for line, row in iter_jsonl(path):
        text = str(need(row, "question", path, line))
        options = row.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise SuiteError("expected a list of at least 2 strings", file=path, line=line, field="options")
        if len(options) > len(LETTERS):
            raise SuiteError(f"at most {len(LETTERS)} options", file=path, line=line, field="options")
        letter = _label_letter(row.get("label"), len(options), path, line)
        item_id = str(row["id"]) if row.get("id") not in (None, "") else f"{path.stem}-{line}"
        ids.add(item_id, path, line)
        subject = str(row["subject"]) if row.get("subject") else None
        tags = _string_list(row["tags"], "tags", path, line, False) if row.get("tags") else []
        items.append(mcq_item(item_id, text, options, letter, subject, tags, f"{path}:{line}"))
    return items


def _label_letter(label: Any, count: int, path: Path, line: int) -> str | None:
    if label is None or label == "":
        return None
    valid = LETTERS[:count]
    # bool is an int subclass: `true` is not an index.
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < count:
        return LETTERS[label]
    if isinstance(label, str) and len(label.strip()) == 1 and label.strip().upper() in valid:
        return label.strip().upper()
    raise SuiteError(
        f"label {label!r} is not one of the options",
        file=path,
        line=line,
        field="label",
        hint=f"use a letter {valid[0]}-{valid[-1]} or an index 0-{count - 1}",
    )


def mcq_item(
    item_id: str,
    text: str,
    options: list[str],
    letter: str | None,
    subject: str | None,
    tags: list[str],
    source: str,
) -> SuiteItem:
    """An MCQ item, tagged with its subject and (for a known subject) its category."""
    category = subject_category(subject) if subject else None
    all_tags = list(tags)
    if subject:
        all_tags.append(f"subject:{subject}")
    if category:
        all_tags.append(f"category:{category}")
    question = Question(user_input=text, id=item_id, reference=letter, choices=list(options), tags=all_tags)
    return SuiteItem(question, subject=subject, category=category, reference_letter=letter, source=source)


def options_block(choices: list[str]) -> str:
    """The options as a prompt lists them: ``A. first`` on one line, ``B. second`` on the next."""
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


__all__ = [
    "DATA_SUFFIXES",
    "LETTERS",
    "ItemIds",
    "SuiteError",
    "data_file_kind",
    "is_data_file",
    "iter_csv",
    "iter_jsonl",
    "load_mcq_jsonl",
    "load_qa",
    "mcq_item",
    "need",
    "options_block",
]
