"""Readers for suite data files: QA JSONL/CSV, generic MCQ JSONL, and exam CSV trees.

Every reader returns ``SuiteItem``s and raises ``SuiteError`` naming the file, the line
(1-based, the line a CSV record or JSONL object starts on) and the column where there is
one. The suite spec (``evaluation.suites.spec``) decides which reader runs and renders prompts.

Exam layouts (one CSV per subject, in split folders under a root):

- ``ceval``: ``<root>/<split>/<subject>_<split>.csv``, header ``id,question,A,B,C,D,answer[,explanation]``.
  No ``answer`` column (C-Eval's test split) means the items carry no reference: predictions only.
- ``mmlu``: ``<root>/<split>/<subject>_<split>.csv``, no header, rows ``question,A,B,C,D,answer``.
- ``cmmlu``: ``<root>/<split>/<subject>.csv``, header ``,Question,A,B,C,D,Answer``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant.errors import LadderError
from assistant.types import Question
from evaluation.items import SuiteItem

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ExamLayout = Literal["ceval", "mmlu", "cmmlu"]
EXAM_LAYOUTS: tuple[str, ...] = ("ceval", "mmlu", "cmmlu")


class SuiteError(LadderError):
    """A bad suite spec or data file; ``file``/``line``/``column`` say where."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        where = self.file or ""
        if line is not None:
            where += f":{line}"
        if isinstance(column, int):
            where += f":{column}"
        elif column is not None:
            message = f"column {column!r}: {message}"
        super().__init__(f"{where}: {message}" if where else message, hint)


@dataclass
class ExamRow:
    """A parsed exam CSV row before prompt rendering."""

    id: str
    question: str
    choices: list[str]
    answer: str | None
    explanation: str | None
    line: int
    file: Path
    subject: str = ""


# ---- C-Eval subjects: name -> (Chinese name, category) -----------------------------------
CEVAL_SUBJECTS: dict[str, tuple[str, str]] = {
    "computer_network": ("计算机网络", "STEM"),
    "operating_system": ("操作系统", "STEM"),
    "computer_architecture": ("计算机组成", "STEM"),
    "college_programming": ("大学编程", "STEM"),
    "college_physics": ("大学物理", "STEM"),
    "college_chemistry": ("大学化学", "STEM"),
    "advanced_mathematics": ("高等数学", "STEM"),
    "probability_and_statistics": ("概率统计", "STEM"),
    "discrete_mathematics": ("离散数学", "STEM"),
    "electrical_engineer": ("注册电气工程师", "STEM"),
    "metrology_engineer": ("注册计量师", "STEM"),
    "high_school_mathematics": ("高中数学", "STEM"),
    "high_school_physics": ("高中物理", "STEM"),
    "high_school_chemistry": ("高中化学", "STEM"),
    "high_school_biology": ("高中生物", "STEM"),
    "middle_school_mathematics": ("初中数学", "STEM"),
    "middle_school_biology": ("初中生物", "STEM"),
    "middle_school_physics": ("初中物理", "STEM"),
    "middle_school_chemistry": ("初中化学", "STEM"),
    "veterinary_medicine": ("兽医学", "STEM"),
    "college_economics": ("大学经济学", "Social Science"),
    "business_administration": ("工商管理", "Social Science"),
    "marxism": ("马克思主义基本原理", "Social Science"),
    "mao_zedong_thought": ("毛泽东思想和中国特色社会主义理论体系概论", "Social Science"),
    "education_science": ("教育学", "Social Science"),
    "teacher_qualification": ("教师资格", "Social Science"),
    "high_school_politics": ("高中政治", "Social Science"),
    "high_school_geography": ("高中地理", "Social Science"),
    "middle_school_politics": ("初中政治", "Social Science"),
    "middle_school_geography": ("初中地理", "Social Science"),
    "modern_chinese_history": ("近代史纲要", "Humanities"),
    "ideological_and_moral_cultivation": ("思想道德修养与法律基础", "Humanities"),
    "logic": ("逻辑学", "Humanities"),
    "law": ("法学", "Humanities"),
    "chinese_language_and_literature": ("中国语言文学", "Humanities"),
    "art_studies": ("艺术学", "Humanities"),
    "professional_tour_guide": ("导游资格", "Humanities"),
    "legal_professional": ("法律职业资格", "Humanities"),
    "high_school_chinese": ("高中语文", "Humanities"),
    "high_school_history": ("高中历史", "Humanities"),
    "middle_school_history": ("初中历史", "Humanities"),
    "civil_servant": ("公务员", "Other"),
    "sports_science": ("体育学", "Other"),
    "plant_protection": ("植物保护", "Other"),
    "basic_medicine": ("基础医学", "Other"),
    "clinical_medicine": ("临床医学", "Other"),
    "urban_and_rural_planner": ("注册城乡规划师", "Other"),
    "accountant": ("注册会计师", "Other"),
    "fire_engineer": ("注册消防工程师", "Other"),
    "environmental_impact_assessment_engineer": ("环境影响评价工程师", "Other"),
    "tax_accountant": ("税务师", "Other"),
    "physician": ("医师资格", "Other"),
}
CATEGORIES: tuple[str, ...] = ("STEM", "Social Science", "Humanities", "Other")


# Subjects of exams in C-Eval's layout that are not C-Eval's own (a team's internal exam),
# declared by a suite's `subject_info`.
_CUSTOM_SUBJECTS: dict[str, tuple[str, str]] = {}


def register_subject(subject: str, name_zh: str, category: str) -> None:
    """Declare a custom exam subject; redefining a known subject differently is an error."""
    if category not in CATEGORIES:
        raise SuiteError(
            f"subject {subject!r}: category must be one of {', '.join(CATEGORIES)}, got {category!r}"
        )
    known = CEVAL_SUBJECTS.get(subject) or _CUSTOM_SUBJECTS.get(subject)
    if known is not None and known != (name_zh, category):
        raise SuiteError(f"subject {subject!r} is already defined as {known[0]} ({known[1]})")
    _CUSTOM_SUBJECTS[subject] = (name_zh, category)


def _subject(subject: str) -> tuple[str, str] | None:
    return CEVAL_SUBJECTS.get(subject) or _CUSTOM_SUBJECTS.get(subject)


def subject_zh(subject: str) -> str:
    """The Chinese name C-Eval uses in its prompt; unknown subjects keep their own name."""
    known = _subject(subject)
    return known[0] if known else subject.replace("_", " ")


def subject_category(subject: str) -> str | None:
    known = _subject(subject)
    return known[1] if known else None


# ---- low-level readers ----------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SuiteError(
            "file not found", file=path, hint="paths in a suite are relative to its YAML"
        ) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SuiteError("not valid UTF-8", file=path, line=line, hint="save the file as UTF-8") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each non-blank line; a bad line is a ``SuiteError``."""
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SuiteError(
                f"invalid JSON: {exc.msg}",
                file=path,
                line=number,
                column=exc.colno,
                hint="each line of a .jsonl file must be one JSON object",
            ) from None
        if not isinstance(value, dict):
            raise SuiteError(f"expected a JSON object, got {type(value).__name__}", file=path, line=number)
        yield number, value


def iter_csv(path: Path, header: bool = True) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    """``(start line, row)``: a dict by column name when ``header``, else the raw list.

    Rows whose field count differs from the header's are refused with their line, so a
    stray comma never shifts a column silently.
    """
    text = _read_text(path)
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    columns: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SuiteError(
                f"malformed CSV: {exc}",
                file=path,
                line=start,
                hint="quote fields that contain commas, quotes or newlines",
            ) from None
        if not any(cell.strip() for cell in row):
            continue
        if header and columns is None:
            columns = [c.strip() for c in row]
            continue
        if columns is not None:
            if len(row) != len(columns):
                raise SuiteError(
                    f"expected {len(columns)} fields ({','.join(columns)}), got {len(row)}",
                    file=path,
                    line=start,
                    hint="quote fields that contain commas",
                )
            yield start, dict(zip(columns, row, strict=True))
        else:
            yield start, row


def _need(row: dict[str, Any], key: str, path: Path, line: int, hint: str | None = None) -> Any:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SuiteError("missing or empty", file=path, line=line, column=key, hint=hint)
    return value


def _string_list(value: Any, key: str, path: Path, line: int, from_csv: bool) -> list[str]:
    """A list of strings; in CSV a JSON array, or one plain string (``tags``: ``a;b``)."""
    if from_csv and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SuiteError(f"invalid JSON list: {exc.msg}", file=path, line=line, column=key) from None
        elif key == "tags":
            return [t.strip() for t in text.split(";") if t.strip()]
        else:
            return [text] if text else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError("expected a list of strings", file=path, line=line, column=key)
    return list(value)


class _Ids:
    """Refuses a duplicate item id, naming where it first appeared."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def add(self, item_id: str, path: Path, line: int, column: str = "id") -> None:
        if item_id in self.seen:
            raise SuiteError(
                f"duplicate id {item_id!r} (first at {self.seen[item_id]})",
                file=path,
                line=line,
                column=column,
                hint="ids must be unique within a suite",
            )
        self.seen[item_id] = f"{path}:{line}"


# ---- QA ---------------------------------------------------------------------------------------
def load_qa(path: Path, ids: _Ids | None = None) -> list[SuiteItem]:
    """QA items from ``.jsonl`` or ``.csv`` with ragas names: ``user_input``, ``reference``,
    optional ``reference_contexts`` (list), ``reference_context_ids``, ``id`` and ``tags``."""
    ids = ids or _Ids()
    from_csv = path.suffix.lower() == ".csv"
    rows: Iterator[tuple[int, Any]] = iter_csv(path) if from_csv else iter_jsonl(path)
    items = []
    for line, row in rows:
        user_input = str(_need(row, "user_input", path, line, hint="QA items need user_input and reference"))
        reference = row.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise SuiteError("expected a string", file=path, line=line, column="reference")
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
def load_mcq_jsonl(path: Path, ids: _Ids | None = None) -> list[SuiteItem]:
    """``question``, ``options`` (list of >= 2 strings), ``label`` (letter or 0-based index),
    optional ``id``, ``subject``, ``tags``. No ``label`` means predictions only."""
    ids = ids or _Ids()
    items = []
    for line, row in iter_jsonl(path):
        text = str(_need(row, "question", path, line))
        options = row.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise SuiteError("expected a list of at least 2 strings", file=path, line=line, column="options")
        if len(options) > len(LETTERS):
            raise SuiteError(f"at most {len(LETTERS)} options", file=path, line=line, column="options")
        letter = _label_letter(row.get("label"), len(options), path, line)
        item_id = str(row["id"]) if row.get("id") not in (None, "") else f"{path.stem}-{line}"
        ids.add(item_id, path, line)
        subject = str(row["subject"]) if row.get("subject") else None
        tags = _string_list(row["tags"], "tags", path, line, False) if row.get("tags") else []
        items.append(_mcq_item(item_id, text, options, letter, subject, tags, f"{path}:{line}"))
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
        column="label",
        hint=f"use a letter {valid[0]}-{valid[-1]} or an index 0-{count - 1}",
    )


def _mcq_item(
    item_id: str,
    text: str,
    options: list[str],
    letter: str | None,
    subject: str | None,
    tags: list[str],
    source: str,
) -> SuiteItem:
    category = subject_category(subject) if subject else None
    all_tags = list(tags)
    if subject:
        all_tags.append(f"subject:{subject}")
    if category:
        all_tags.append(f"category:{category}")
    question = Question(user_input=text, id=item_id, reference=letter, choices=list(options), tags=all_tags)
    return SuiteItem(question, subject=subject, category=category, reference_letter=letter, source=source)


# ---- exam CSV trees (C-Eval, MMLU, CMMLU) ---------------------------------------------------
def exam_files(root: Path, split: str, layout: ExamLayout) -> dict[str, Path]:
    """``subject -> file`` for one split folder, sorted by subject."""
    folder = root / split
    if not folder.is_dir():
        raise SuiteError(
            f"no {split}/ folder under {root}",
            file=root,
            hint=f"a {layout} tree has <root>/<split>/ folders (dev, val, test)",
        )
    suffix = ".csv" if layout == "cmmlu" else f"_{split}.csv"
    found = {}
    for path in sorted(folder.glob("*.csv")):
        if not path.name.endswith(suffix):
            raise SuiteError(
                f"file name does not end with {suffix!r}",
                file=path,
                hint=f"{layout} files are named <subject>{suffix}",
            )
        found[path.name[: -len(suffix)]] = path
    return found


def read_exam_csv(path: Path, subject: str, layout: ExamLayout) -> list[ExamRow]:
    """The rows of one subject file; answer letters are checked against A-D."""
    rows: list[ExamRow] = []
    seen = _Ids()
    has_header = layout != "mmlu"
    for position, (line, raw) in enumerate(iter_csv(path, header=has_header)):
        if layout == "mmlu":
            assert isinstance(raw, list)
            if len(raw) != 6:
                raise SuiteError(
                    f"expected 6 fields (question,A,B,C,D,answer), got {len(raw)}",
                    file=path,
                    line=line,
                    hint="MMLU files have no header row",
                )
            row = dict(zip(("question", "A", "B", "C", "D", "answer"), raw, strict=True))
            row["id"] = str(position)
        else:
            assert isinstance(raw, dict)
            row = {k.lower() if k in ("Question", "Answer") else k: v for k, v in raw.items()}
            if layout == "cmmlu":
                row["id"] = row.pop("", str(position))
            if position == 0:
                _check_columns(row, path, line, layout)
        choices = [_need(row, letter, path, line) for letter in "ABCD"]
        answer = None
        if "answer" in row:
            answer = str(_need(row, "answer", path, line)).strip().upper()
            if answer not in "ABCD" or len(answer) != 1:
                raise SuiteError(
                    f"answer {row['answer']!r} is not one of A, B, C, D",
                    file=path,
                    line=line,
                    column="answer",
                    hint="the answer is a single letter A-D",
                )
        item_id = str(_need(row, "id", path, line)).strip()
        seen.add(item_id, path, line)
        rows.append(
            ExamRow(
                item_id,
                str(_need(row, "question", path, line)),
                choices,
                answer,
                row.get("explanation") or None,
                line,
                path,
                subject,
            )
        )
    return rows


def _check_columns(row: dict[str, Any], path: Path, line: int, layout: ExamLayout) -> None:
    needed = ["id", "question", "A", "B", "C", "D"]
    missing = [c for c in needed if c not in row]
    if missing:
        header = {"ceval": "id,question,A,B,C,D,answer[,explanation]"}.get(layout, ",Question,A,B,C,D,Answer")
        raise SuiteError(
            f"missing column(s): {', '.join(missing)}",
            file=path,
            line=1,
            hint=f"a {layout} file starts with the header {header}",
        )


def exam_item(row: ExamRow, split: str, prompt: str) -> SuiteItem:
    item = _mcq_item(
        f"{row.subject}/{split}/{row.id}",
        row.question,
        row.choices,
        row.answer,
        row.subject,
        [],
        f"{row.file}:{row.line}",
    )
    item.prompt = prompt
    return item
