"""Writing promoted feedback: a QA suite (YAML + JSONL), SFT chat JSONL, preference-pair JSONL,
and the export of the whole store. Files are appended to; a new suite gets its YAML.

- Suite rows use the Ladder QA fields (``id``, ``user_input``, ``reference``, ``tags``), so
  ``ladder eval`` reads them with ``evaluation.suites.readers.load_qa``. An existing suite's
  YAML is read by the ``SuiteSpecReader`` the caller passes (``assistant`` may not import
  evaluation: the CLI and the web view pass ``evaluation.suites.source.SuiteFiles()``); its
  JSONL by ``assistant.records_io``.
- SFT rows are ``{"messages": [user, assistant], "tags", "source"}``: what ``ladder finetune
  prepare`` and ``ladder finetune train`` take.
- Pair rows are trl's conversational preference format: ``{"prompt": [user], "chosen":
  [assistant], "rejected": [assistant], "source"}``: what ``ladder finetune train --method dpo``
  takes.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.feedback.errors import FeedbackError
from assistant.leakage import SuiteQuestionReader
from assistant.records_io import iter_jsonl
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.feedback.store import FeedbackItem

FILE_NAMES = {"suite": "feedback_suite.yaml", "sft": "feedback_sft.jsonl", "pairs": "feedback_pairs.jsonl"}
TAG = "feedback"


class SuiteSpec(Protocol):
    """What promotion uses of a suite YAML (``evaluation.suites.spec.SuiteSpec``)."""

    @property
    def kind(self) -> str: ...

    @property
    def data(self) -> Sequence[Path]: ...  # resolved against the YAML's folder


class SuiteSpecReader(Protocol):
    def spec(self, path: Path) -> SuiteSpec:
        """The suite YAML at ``path``, validated; a bad one raises the reader's located error."""
        ...


class SuiteFilesReader(SuiteSpecReader, SuiteQuestionReader, Protocol):
    """What promotion reads of suites: a suite's YAML (to extend it) and its questions (the
    leakage check of a promotion to training data); ``evaluation.suites.source.SuiteFiles``."""


def default_path(target: str, settings: Settings) -> Path:
    return settings.home / "feedback" / FILE_NAMES[target]


def reference_of(item: FeedbackItem, reference: str | None) -> str:
    """The answer a promoted item teaches or is judged against."""
    if reference is not None and reference.strip():
        return reference
    if item.correction:
        return item.correction
    if item.rating == "up":
        return item.answer
    raise FeedbackError(
        f"feedback {item.id} is a thumbs-down without a correction: there is no right answer to use",
        hint="pass a reference answer (--reference TEXT), or dismiss it",
    )


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(row, ensure_ascii=False) + "\n"
    # One write of a whole line with O_APPEND: a concurrent reader never sees half a row.
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _suite_data_file(path: Path, suites: SuiteSpecReader | None) -> Path:
    """The JSONL file of an existing QA suite to append to, or the one a new suite gets."""
    if not path.is_file():
        if path.suffix not in {".yaml", ".yml"}:
            raise FeedbackError(f"a suite is a YAML file, got {path}")
        import yaml

        spec = {
            "name": path.stem,
            "description": "Questions promoted from end users' feedback (ladder feedback promote).",
            "kind": "qa",
            "data": f"{path.stem}.jsonl",
            "metrics": ["exact_match", "token_f1", "rouge_l"],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path.with_name(f"{path.stem}.jsonl")
    if suites is None:
        raise TypeError(f"extending the suite {path} needs its reader: pass suites=SuiteFiles()")
    spec_loaded = suites.spec(path)
    jsonl = [p for p in spec_loaded.data if p.suffix == ".jsonl"]
    if spec_loaded.kind != "qa" or not jsonl:
        raise FeedbackError(
            f"{path} is not a QA suite with a JSONL data file", hint="promote into a qa suite, or a new YAML"
        )
    return jsonl[-1]


def _suite_row(item: FeedbackItem, reference: str, data_file: Path) -> dict[str, Any]:
    row_id = f"feedback-{item.id}"
    if data_file.is_file():
        for number, row in iter_jsonl(data_file, FeedbackError):
            if row.get("id") == row_id:
                raise FeedbackError(f"the suite already holds id {row_id}", file=data_file, line=number)
    return {"id": row_id, "user_input": item.question, "reference": reference, "tags": [TAG, item.rating]}


def write_row(
    target: str, item: FeedbackItem, path: Path, reference: str | None, suites: SuiteSpecReader | None = None
) -> Path:
    """Append one item to the target's file; return the file the reviewer should know about.
    ``suites`` reads an existing suite's YAML (target ``suite``)."""
    path = path.expanduser()
    source = f"feedback:{item.id}"
    if target == "suite":
        data_file = _suite_data_file(path, suites)
        _append_jsonl(data_file, _suite_row(item, reference_of(item, reference), data_file))
        return path
    if target == "sft":
        messages = [{"role": "user", "content": item.question},
                    {"role": "assistant", "content": reference_of(item, reference)}]  # fmt: skip
        _append_jsonl(path, {"messages": messages, "tags": [TAG], "source": source})
        return path
    if target == "pairs":
        assert item.correction is not None
        chosen = reference if reference else item.correction
        _append_jsonl(path, {
            "prompt": [{"role": "user", "content": item.question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": item.answer}],
            "source": source,
        })  # fmt: skip
        return path
    raise ValueError(f"unknown target {target!r}")


EXPORT_FIELDS = ("id", "created", "status", "rating", "question", "answer", "correction", "comment",
                 "model", "strategy", "session_id", "source", "promotions")  # fmt: skip


def write_export(items: list[FeedbackItem], out: Path, fmt: str) -> int:
    if fmt not in {"jsonl", "csv"}:
        raise FeedbackError(f"unknown export format {fmt!r}", hint="use jsonl or csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "jsonl":
            for item in items:
                handle.write(json.dumps(item.to_dict(), ensure_ascii=False, default=str) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            for item in items:
                row = {key: getattr(item, key) for key in EXPORT_FIELDS if key != "promotions"}
                row["promotions"] = ";".join(f"{p.target}:{p.path}" for p in item.promotions)
                writer.writerow(row)
    os.replace(tmp, out)
    return len(items)
