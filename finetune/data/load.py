"""Reading fine-tuning data: Alpaca, chat (OpenAI ``messages`` / ShareGPT ``conversations``),
Ladder QA files and suites, and raw text for continued pre-training.

Every format becomes an ``Example``: a chat (``messages``, the last one the assistant's
reply to learn) or, in text mode, one ``text``. Each keeps where it came from
(``source`` = ``file:line``) so every later report and error can point at the input.

A file that cannot be read as its format is an error naming the file, line and (for bad
JSON) column, or the field that is missing; nothing is skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, LadderError

FORMATS = ("auto", "alpaca", "chat", "qa", "text")
TEXT_SUFFIXES = (".txt", ".md")
SUITE_SUFFIXES = (".yaml", ".yml")
ROLES = ("system", "user", "assistant")
# ShareGPT's speaker names -> chat roles.
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
}


class DataError(LadderError):
    """A bad training-data file; the message starts with ``file:line[:column]``.

    The sibling of ``evaluation.suites.readers.SuiteError`` for training data: the same
    ``file:line:column`` form, with the missing or bad *field* named.
    """

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
            message = f"field {field!r}: {message}"
        super().__init__(f"{where}: {message}" if where else message, hint)


@dataclass
class Example:
    """One training example: a chat, or (text mode) a text."""

    messages: list[dict[str, str]] = field(default_factory=list)
    text: str = ""
    tags: list[str] = field(default_factory=list)
    source: str = ""  # "file:line"
    # User-side parts worth checking for leakage on their own (Alpaca's `input`, whose
    # instruction is often boilerplate shared by every example).
    extra_probes: list[str] = field(default_factory=list)
    origin: str = "domain"  # "domain" or "general"

    @property
    def is_text(self) -> bool:
        return not self.messages

    @property
    def prompt(self) -> str:
        """The user side: every user message (or the text)."""
        if self.is_text:
            return self.text
        return "\n\n".join(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def response(self) -> str:
        """The reply to learn: the last assistant message (empty in text mode)."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "assistant"), "")

    @property
    def full_text(self) -> str:
        return self.text if self.is_text else "\n\n".join(m["content"] for m in self.messages)

    def probes(self) -> list[str]:
        """Texts compared with evaluation questions by the leakage check."""
        if self.is_text:
            return [self.text]
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return [p for p in dict.fromkeys([*users, *self.extra_probes]) if p.strip()]

    def row(self) -> dict[str, Any]:
        """The output JSONL line."""
        body: dict[str, Any] = {"text": self.text} if self.is_text else {"messages": self.messages}
        return {**body, "tags": self.tags, "source": self.source}

    def as_text(self) -> Example:
        """A chat flattened into one text (general instruction data mixed into text mode)."""
        if self.is_text:
            return self
        return Example(text=self.full_text, tags=self.tags, source=self.source, origin=self.origin)


# ---- reading files -------------------------------------------------------------------------
def read_text(path: Path) -> str:
    if not path.exists():
        raise DataError("file not found", file=path, hint="check the path")
    if not path.is_file():
        raise DataError("not a file", file=path, hint="give data files, not folders")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError("not valid UTF-8", file=path, line=line, hint="save the file as UTF-8") from None


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` from JSONL (one object per line) or a JSON array (``.json``)."""
    text = read_text(path)
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        yield from _json_array(path, text)
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"invalid JSON: {exc.msg}",
                file=path,
                line=number,
                column=exc.colno,
                hint="each line of a .jsonl file must be one JSON object",
            ) from None
        if not isinstance(value, dict):
            raise DataError(f"expected a JSON object, got {type(value).__name__}", file=path, line=number)
        yield number, value


def _json_array(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of a JSON array, each with the line it starts on."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno, column=exc.colno) from None
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return
        value, end = decoder.raw_decode(text, position)
        line = text.count("\n", 0, position) + 1
        if not isinstance(value, dict):
            raise DataError(f"expected a JSON object, got {type(value).__name__}", file=path, line=line)
        yield line, value
        position = end


def _string(row: dict[str, Any], key: str, path: Path, line: int, required: bool = True) -> str:
    """A text field. Missing is an error when ``required``; present but empty is data (the
    cleaning step drops and counts empty examples)."""
    value = row.get(key)
    if value is None:
        if required:
            raise DataError("missing", file=path, line=line, field=key)
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise DataError(f"expected a string, got {type(value).__name__}", file=path, line=line, field=key)
    return str(value)


def _tags(row: dict[str, Any], path: Path, line: int) -> list[str]:
    tags = row.get("tags")
    if tags in (None, ""):
        return []
    if isinstance(tags, str):
        return [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DataError("expected a list of strings", file=path, line=line, field="tags")
    return list(tags)


# ---- formats -------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """``text`` for .txt/.md, ``qa`` for a suite YAML or a CSV, else from the first record's keys."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in SUITE_SUFFIXES or suffix == ".csv":
        return "qa"
    for line, row in iter_records(path):
        if "messages" in row or "conversations" in row:
            return "chat"
        if "instruction" in row:
            return "alpaca"
        if "user_input" in row:
            return "qa"
        if "text" in row:
            return "text"
        raise DataError(
            f"cannot tell the format from the keys {sorted(row)}",
            file=path,
            line=line,
            hint="Alpaca needs instruction/output, chat messages or conversations, QA user_input/reference; "
            "or pass --format",
        )
    raise DataError("the file holds no records", file=path)


def load_file(path: Path, fmt: str = "auto") -> list[Example]:
    """Every example of one file, in the given format (``auto``: detected per file)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    loader = {"alpaca": _load_alpaca, "chat": _load_chat, "qa": _load_qa, "text": _load_text}[fmt]
    return loader(path)


def _load_alpaca(path: Path) -> list[Example]:
    examples = []
    for line, row in iter_records(path):
        instruction = _string(row, "instruction", path, line)
        extra = _string(row, "input", path, line, required=False)
        output = _string(row, "output", path, line)
        system = _string(row, "system", path, line, required=False)
        messages = [{"role": "system", "content": system}] if system.strip() else []
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        examples.append(
            Example(
                messages,
                tags=_tags(row, path, line),
                source=f"{path}:{line}",
                extra_probes=[extra] if extra.strip() else [],
            )
        )
    return examples


def _load_chat(path: Path) -> list[Example]:
    examples = []
    for line, row in iter_records(path):
        if "messages" in row:
            key, role_key, content_key = "messages", "role", "content"
        elif "conversations" in row:
            key, role_key, content_key = "conversations", "from", "value"
        else:
            raise DataError(
                "missing (a chat needs messages, or ShareGPT's conversations)",
                file=path,
                line=line,
                field="messages",
            )
        turns = row[key]
        if not isinstance(turns, list) or not turns:
            raise DataError("expected a non-empty list of turns", file=path, line=line, field=key)
        messages = []
        for index, turn in enumerate(turns):
            where = f"{key}[{index}]"
            if not isinstance(turn, dict):
                raise DataError("expected an object", file=path, line=line, field=where)
            role = turn.get(role_key)
            role = SHAREGPT_ROLES.get(str(role).lower()) if key == "conversations" else role
            if role not in ROLES:
                raise DataError(
                    f"unknown or missing {role_key} {turn.get(role_key)!r}",
                    file=path,
                    line=line,
                    field=where,
                    hint=f"roles: {', '.join(ROLES)}"
                    if key == "messages"
                    else f"from: {', '.join(SHAREGPT_ROLES)}",
                )
            content = turn.get(content_key)
            if not isinstance(content, str):
                raise DataError(f"missing {content_key} (a string)", file=path, line=line, field=where)
            messages.append({"role": str(role), "content": content})
        if not any(m["role"] == "user" for m in messages):
            raise DataError("no user turn", file=path, line=line, field=key)
        if messages[-1]["role"] != "assistant":
            raise DataError(
                "the last turn must be the assistant's reply (what the model learns)",
                file=path,
                line=line,
                field=key,
            )
        examples.append(Example(messages, tags=_tags(row, path, line), source=f"{path}:{line}"))
    return examples


def _load_qa(path: Path) -> list[Example]:
    """Ladder QA data (``user_input``/``reference``): a JSONL/CSV file or a suite YAML."""
    from evaluation.items import SuiteItem
    from evaluation.suites.readers import load_qa

    items: list[SuiteItem]
    if path.suffix.lower() in SUITE_SUFFIXES:
        from evaluation.suites.spec import load_suite

        items = load_suite(path).items
    else:
        read_text(path)  # our own "not found" error before the suite loader's
        items = load_qa(path)
    examples = []
    for item in items:
        question = item.question
        file, _, line = item.source.rpartition(":")
        if not question.reference:
            raise DataError(
                "missing or empty: training needs the answer",
                file=file or path,
                line=int(line) if line.isdigit() else None,
                field="reference",
            )
        user = item.prompt if question.choices else question.user_input  # MCQ: question with options
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": question.reference}]
        examples.append(Example(messages, tags=list(question.tags), source=item.source or str(path)))
    return examples


def _load_text(path: Path) -> list[Example]:
    """Raw text, one example per file; ``text`` JSONL, one per line. Text is chunked later."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return [
            Example(
                text=_string(row, "text", path, line), tags=_tags(row, path, line), source=f"{path}:{line}"
            )
            for line, row in iter_records(path)
        ]
    from assistant.knowledge.loaders import LoadError, decode_text

    if not path.is_file():
        read_text(path)  # raises the not-found / not-a-file error
    try:
        text = decode_text(path.read_bytes())  # UTF-8, GBK, ... detected
    except LoadError as exc:
        raise DataError(str(exc), file=path) from None
    return [Example(text=text, source=f"{path}:1")]


def chunk_texts(examples: list[Example], size_chars: int) -> list[Example]:
    """Long texts cut into training texts of at most ``size_chars`` on sentence boundaries."""
    from assistant.knowledge.chunking import chunk_spans

    out = []
    for example in examples:
        text = example.text.replace("\r\n", "\n")
        if len(text) <= size_chars:
            out.append(example)
            continue
        file, _, first = example.source.rpartition(":")
        for span in chunk_spans(text, size_chars, 0):
            line = int(first) + text.count("\n", 0, span.start) if first.isdigit() else 1
            piece = text[span.start : span.end].strip()
            out.append(Example(text=piece, tags=example.tags, source=f"{file}:{line}", origin=example.origin))
    return out


__all__ = ["FORMATS", "DataError", "Example", "chunk_texts", "detect_format", "iter_records", "load_file"]
