"""Reading record files with errors that say where: the one reader behind evaluation suites,
fine-tuning data, preference pairs and promoted feedback.

- ``read_text``: UTF-8 (a BOM is dropped); a missing file, a folder or bad bytes is an error
  with the file (and, for bad bytes, the line).
- ``iter_jsonl``: ``(line, object)`` for each non-blank line of a JSONL file, or for each object
  of a ``.json`` file holding a JSON array when the caller accepts those (``json_arrays``).
- ``iter_csv``: ``(line, row)`` with the line a record *starts* on (a quoted field may span
  lines); a row whose field count differs from the header's is refused, so a stray comma
  never shifts a column silently.

Every problem is a ``RecordError`` of the caller's class (``SuiteError``, ``DataError``,
``TrainDataError``, ``FeedbackError`` subclass it), so each reader's errors keep the type its
callers catch. The message starts with ``file:line[:column]`` and names the field at fault.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import LadderError

JSONL_HINT = "each line of a .jsonl file must be one JSON object"


class RecordError(LadderError):
    """A bad record file; ``file``, ``line``, ``column`` (a character) and ``field`` say where.

    The message reads ``file:line:column: <field_label> 'name': problem``. ``field_label`` is
    what a family calls a record's named parts: ``field`` here, ``column`` for suites (whose
    CSV columns are the fields).
    """

    field_label = "field"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line, self.column, self.field = line, column, field
        where = self.file or ""
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f":{column}"
        if field is not None:
            message = f"{self.field_label} {field!r}: {message}"
        super().__init__(f"{where}: {message}" if where else message, hint)

    @classmethod
    def bad_json(cls, file: Path, line: int, exc: json.JSONDecodeError) -> RecordError:
        """A line that is not JSON; a family may word it its own way (see ``TrainDataError``)."""
        return cls(f"invalid JSON: {exc.msg}", file=file, line=line, column=exc.colno, hint=JSONL_HINT)


def read_text(
    path: Path, error: type[RecordError] = RecordError, missing_hint: str = "check the path"
) -> str:
    """The file's text; ``missing_hint`` tells where the caller looks for its files."""
    path = Path(path)
    if not path.exists():
        raise error("file not found", file=path, hint=missing_hint)
    if not path.is_file():
        raise error("not a file", file=path, hint="give data files, not folders")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise error("not valid UTF-8", file=path, line=line, hint="save the file as UTF-8") from None


def _object(value: Any, path: Path, line: int, error: type[RecordError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise error(f"expected a JSON object, got {type(value).__name__}", file=path, line=line)
    return value


def iter_jsonl(
    path: Path,
    error: type[RecordError] = RecordError,
    *,
    json_arrays: bool = False,
    missing_hint: str = "check the path",
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each non-blank line. With ``json_arrays``, a ``.json`` file that
    holds an array gives its objects instead, each with the line it starts on."""
    path = Path(path)
    text = read_text(path, error, missing_hint)
    if json_arrays and path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        yield from _json_array(path, text, error)
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise error.bad_json(path, number, exc) from None
        yield number, _object(value, path, number, error)


def _json_array(path: Path, text: str, error: type[RecordError]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of a JSON array, each with the line it starts on."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno, column=exc.colno) from None
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return
        value, end = decoder.raw_decode(text, position)
        line = text.count("\n", 0, position) + 1
        yield line, _object(value, path, line, error)
        position = end


def iter_csv(
    path: Path,
    error: type[RecordError] = RecordError,
    *,
    header: bool = True,
    missing_hint: str = "check the path",
) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    """``(start line, row)``: a dict by column name when ``header``, else the raw list.
    Blank rows are skipped."""
    path = Path(path)
    text = read_text(path, error, missing_hint)
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    columns: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise error(
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
                raise error(
                    f"expected {len(columns)} fields ({','.join(columns)}), got {len(row)}",
                    file=path,
                    line=start,
                    hint="quote fields that contain commas",
                )
            yield start, dict(zip(columns, row, strict=True))
        else:
            yield start, row


__all__ = ["JSONL_HINT", "RecordError", "iter_csv", "iter_jsonl", "read_text"]
