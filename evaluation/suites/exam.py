"""Exam trees (C-Eval, MMLU, CMMLU): one CSV per subject in split folders under a root, read
into ``SuiteItem``s with the exam's own k-shot prompt.

- ``ceval``: ``<root>/<split>/<subject>_<split>.csv``, header ``id,question,A,B,C,D,answer[,explanation]``.
  No ``answer`` column (C-Eval's test split) means the items carry no reference: predictions only.
- ``mmlu``: ``<root>/<split>/<subject>_<split>.csv``, no header, rows ``question,A,B,C,D,answer``.
- ``cmmlu``: ``<root>/<split>/<subject>.csv``, header ``,Question,A,B,C,D,Answer``.

Exemplars come from the same subject's file in ``dev/``. The prompts are the ones each exam's
reference harness uses, so scores compare with published ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evaluation.items import SuiteItem
from evaluation.suites.errors import SuiteError
from evaluation.suites.readers import ItemIds, iter_csv, mcq_item, need, options_block
from evaluation.suites.subjects import subject_zh

ExamLayout = Literal["ceval", "mmlu", "cmmlu"]
EXAM_LAYOUTS: tuple[str, ...] = ("ceval", "mmlu", "cmmlu")


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


@dataclass(frozen=True)
class ExamTree:
    """What a suite scores of an exam tree: its roots, the split, the subjects and the shots.
    ``spec_file`` and ``subjects_line`` locate errors in the suite's YAML."""

    roots: tuple[Path, ...]
    layout: ExamLayout
    split: str
    subjects: tuple[str, ...] | None = None  # None: every subject of the split
    k_shot: int = 0
    chain_of_thought: bool = False
    spec_file: Path | None = None
    subjects_line: int | None = None

    def items(self) -> list[SuiteItem]:
        """Every item of the chosen subjects, its prompt rendered with ``k_shot`` dev exemplars."""
        items: list[SuiteItem] = []
        for root in self.roots:
            files = exam_files(root, self.split, self.layout)
            wanted = self.subjects if self.subjects is not None else tuple(files)
            for subject in wanted:
                if subject not in files:
                    raise SuiteError(
                        f"no {self.split} file for subject {subject!r} in {root}",
                        file=self.spec_file,
                        line=self.subjects_line,
                        hint=f"found: {', '.join(files)}",
                    )
                shots = dev_exemplars(root, subject, self.layout, self.k_shot) if self.k_shot else []
                for row in read_exam_csv(files[subject], subject, self.layout):
                    items.append(exam_item(row, self.split, self.prompt(subject, row, shots)))
        return items

    def prompt(self, subject: str, row: ExamRow, shots: list[ExamRow]) -> str:
        if self.layout == "ceval":
            return ceval_prompt(subject, row, shots, self.chain_of_thought)
        if self.layout == "mmlu":
            return mmlu_prompt(subject, row, shots)
        return cmmlu_prompt(subject, row, shots)


# ---- files --------------------------------------------------------------------------------------
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
    seen = ItemIds()
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
                _check_columns(row, path, layout)
        choices = [need(row, letter, path, line) for letter in "ABCD"]
        answer = None
        if "answer" in row:
            answer = str(need(row, "answer", path, line)).strip().upper()
            if answer not in "ABCD" or len(answer) != 1:
                raise SuiteError(
                    f"answer {row['answer']!r} is not one of A, B, C, D",
                    file=path,
                    line=line,
                    field="answer",
                    hint="the answer is a single letter A-D",
                )
        item_id = str(need(row, "id", path, line)).strip()
        seen.add(item_id, path, line)
        rows.append(
            ExamRow(
                item_id,
                str(need(row, "question", path, line)),
                choices,
                answer,
                row.get("explanation") or None,
                line,
                path,
                subject,
            )
        )
    return rows


def _check_columns(row: dict[str, Any], path: Path, layout: ExamLayout) -> None:
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


def dev_exemplars(root: Path, subject: str, layout: ExamLayout, k_shot: int) -> list[ExamRow]:
    """The first ``k_shot`` rows of the subject's dev file, each with its answer."""
    dev_files = exam_files(root, "dev", layout)
    if subject not in dev_files:
        raise SuiteError(
            f"k_shot needs dev exemplars, but there is no dev file for {subject!r}", file=root / "dev"
        )
    rows = read_exam_csv(dev_files[subject], subject, layout)
    if len(rows) < k_shot:
        raise SuiteError(
            f"k_shot is {k_shot} but the dev file has {len(rows)} exemplars",
            file=dev_files[subject],
            hint="lower k_shot",
        )
    for row in rows[:k_shot]:
        if row.answer is None:
            raise SuiteError("dev exemplars need an answer column", file=dev_files[subject], line=1)
    return rows[:k_shot]


def exam_item(row: ExamRow, split: str, prompt: str) -> SuiteItem:
    item = mcq_item(
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


# ---- prompts ------------------------------------------------------------------------------------
def ceval_prompt(subject: str, row: ExamRow, exemplars: list[ExamRow], chain_of_thought: bool = False) -> str:
    """C-Eval's k-shot prompt: the header, exemplars with answers, then the question and "答案："."""
    parts = [f"以下是中国关于{subject_zh(subject)}考试的单项选择题，请选出其中的正确答案。\n\n"]
    for shot in exemplars:
        body = f"{shot.question}\n{options_block(shot.choices)}\n答案："
        if chain_of_thought and shot.explanation:
            body += f"让我们一步一步思考，\n{shot.explanation.strip()}\n所以答案是{shot.answer}。"
        else:
            body += str(shot.answer)
        parts.append(body + "\n\n")
    parts.append(f"{row.question}\n{options_block(row.choices)}\n答案：")
    if chain_of_thought:
        parts.append("让我们一步一步思考，\n")
    return "".join(parts)


def mmlu_prompt(subject: str, row: ExamRow, exemplars: list[ExamRow]) -> str:
    topic = subject.replace("_", " ")
    header = f"The following are multiple choice questions (with answers) about {topic}.\n\n"
    body = "".join(f"{s.question}\n{options_block(s.choices)}\nAnswer: {s.answer}\n\n" for s in exemplars)
    return f"{header}{body}{row.question}\n{options_block(row.choices)}\nAnswer:"


def cmmlu_prompt(subject: str, row: ExamRow, exemplars: list[ExamRow]) -> str:
    header = f"以下是关于{subject_zh(subject)}的单项选择题，请直接给出正确答案的选项。\n\n"
    body = "".join(
        f"题目：{shot.question}\n{options_block(shot.choices)}\n答案是：{shot.answer}\n\n"
        for shot in exemplars
    )
    return f"{header}{body}题目：{row.question}\n{options_block(row.choices)}\n答案是："


__all__ = [
    "EXAM_LAYOUTS",
    "ExamLayout",
    "ExamRow",
    "ExamTree",
    "ceval_prompt",
    "cmmlu_prompt",
    "dev_exemplars",
    "exam_files",
    "exam_item",
    "mmlu_prompt",
    "read_exam_csv",
]
