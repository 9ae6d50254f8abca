"""Reading fine-tuning data: Alpaca, chat (OpenAI ``messages`` / ShareGPT ``conversations``),
Ladder QA files and suites, and raw text for continued pre-training.

Every format becomes an ``Example``: a chat (``messages``, the last one the assistant's
reply to learn) or, in text mode, one ``text``. Each keeps where it came from
(``source`` = ``file:line``) so every later report and error can point at the input.

A file that cannot be read as its format is an error naming the file, line and (for bad
JSON) column, or the field that is missing; nothing is skipped silently. Records are read by
``assistant.records_io``; QA data and suites by the ``SuiteReader`` the caller passes
(``finetune.data.suites``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import records_io
from assistant.errors import ConfigError
from finetune.data.errors import DataError

if TYPE_CHECKING:
    from finetune.data.suites import SuiteReader

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
    return records_io.read_text(path, DataError)


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` from JSONL (one object per line) or a JSON array (``.json``)."""
    return records_io.iter_jsonl(path, DataError, json_arrays=True)


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


def load_file(path: Path, fmt: str = "auto", suites: SuiteReader | None = None) -> list[Example]:
    """Every example of one file, in the given format (``auto``: detected per file). QA data is
    read with ``suites`` (``evaluation.suites.source.SuiteFiles()``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "qa":
        if suites is None:
            raise TypeError(f"{path} is QA data, which is read as suites are: pass suites=SuiteFiles()")
        return _load_qa(path, suites)
    loader = {"alpaca": _load_alpaca, "chat": _load_chat, "text": _load_text}[fmt]
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


def _load_qa(path: Path, suites: SuiteReader) -> list[Example]:
    """Ladder QA data (``user_input``/``reference``): a JSONL/CSV file or a suite YAML."""
    if path.suffix.lower() in SUITE_SUFFIXES:
        items = suites.suite(path)[1]
    else:
        read_text(path)  # our own "not found" error before the suite reader's
        items = suites.qa_file(path)
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
