"""Verifiers: cheap, deterministic checks of a model's answer, used by the reflection loop.

A verifier's ``check(answer_text, question)`` returns a ``Verdict``. It never raises on bad
model output: an unparsable answer is a failed verdict whose ``feedback`` tells the model
what to fix. ``fixed`` is the answer in normal form (the label, the option letter, the bare
JSON, the bare SQL) for the strategy to return when the check passes.

Verifiers are registered by name and a second registration is refused. All take one
``VerifierOptions``, so a user-added verifier is configured the same way.

The read-only SQLite helpers live here and are shared with the ``sql_query`` agent tool.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from assistant.errors import ConfigError
from assistant.types import Question

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class Verdict:
    ok: bool
    feedback: str
    fixed: str | None = None
    # Result rows of an SQL check (at most ``max_rows``), for the trace and the caller.
    rows: list[tuple[Any, ...]] | None = None


@dataclass
class VerifierOptions:
    labels: list[str] | None = None
    pattern: str | None = None
    database: str | None = None
    schema: dict[str, Any] | None = None
    timeout_s: float = 2.0
    max_rows: int = 20


class Verifier(Protocol):
    name: ClassVar[str]

    def check(self, answer_text: str, question: Question) -> Verdict: ...


_VERIFIERS: dict[str, Callable[[VerifierOptions], Verifier]] = {}


def register_verifier(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: register a verifier under ``name``; a second ``name`` is a bug."""

    def decorate(cls: type[Any]) -> type[Any]:
        if name in _VERIFIERS:
            raise KeyError(f"verifier {name!r} is already registered")
        cls.name = name
        _VERIFIERS[name] = cls
        return cls

    return decorate


def verifier_names() -> list[str]:
    return list(_VERIFIERS)


def build_verifier(name: str, options: VerifierOptions | None = None) -> Verifier:
    try:
        factory = _VERIFIERS[name]
    except KeyError:
        raise ConfigError(f"unknown verifier {name!r}", hint=f"known: {', '.join(_VERIFIERS)}") from None
    return factory(options or VerifierOptions())


# ---- JSON extraction (shared with the agent's action parser) -------------------------------
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_JSON_WORDS = {"true": "True", "false": "False", "null": "None"}


def fenced_blocks(text: str, languages: tuple[str, ...] = ()) -> list[str]:
    """Contents of ``` fences, those tagged with one of ``languages`` first."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    tagged = [body for lang, body in blocks if lang in languages]
    return tagged + [body for lang, body in blocks if lang not in languages]


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket that closes ``text[start]``, skipping quoted strings."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _lenient_load(snippet: str) -> Any:
    """JSON with the usual small-model slips: trailing commas, single quotes, Python literals."""
    cleaned = _TRAILING_COMMA.sub(r"\1", snippet)
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError:
        pass
    pythonic = re.sub(r"\b(true|false|null)\b", lambda m: _JSON_WORDS[m.group(1)], cleaned)
    value = ast.literal_eval(pythonic)
    # Round-trip so tuples and sets become JSON types (the trace is stored as JSON).
    return json.loads(json.dumps(value, default=str))


def find_json(text: str, accept: Callable[[Any], bool] = lambda _: True, max_starts: int = 64) -> Any:
    """The first JSON object or array in ``text`` that ``accept`` takes; ``None`` if none.

    Looks inside ```json fences first, then in the whole text; tries strict JSON from every
    opening bracket, then a lenient parse of each balanced bracket span.
    """
    decoder = json.JSONDecoder()
    candidates = [*fenced_blocks(text, ("json",)), text]
    for candidate in candidates:
        stripped = candidate.strip()
        try:
            whole = json.loads(stripped)
            if accept(whole):
                return whole
        except (json.JSONDecodeError, RecursionError):
            pass
        starts = [i for i, char in enumerate(candidate) if char in "{["][:max_starts]
        for start in starts:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except (json.JSONDecodeError, RecursionError):
                continue
            if accept(value):
                return value
        for start in starts:
            end = _balanced_end(candidate, start)
            if end is None:
                continue
            try:
                value = _lenient_load(candidate[start:end])
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if accept(value):
                return value
    return None


# ---- read-only SQLite (shared with the sql_query tool) --------------------------------------
_SQL_START = re.compile(r"\b(SELECT|WITH)\b", re.IGNORECASE)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass
class SqlResult:
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None

    def preview(self, limit: int = 10) -> str:
        if self.error:
            return f"SQLite error: {self.error}"
        head = " | ".join(self.columns)
        lines = [" | ".join(_cell(v) for v in row) for row in self.rows[:limit]]
        more = len(self.rows) > limit or self.truncated
        summary = f"{len(self.rows)}{'+' if self.truncated else ''} row(s)"
        return "\n".join([summary, head, *lines, *(["..."] if more else [])])


def _cell(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def json_safe_rows(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [[v.hex() if isinstance(v, bytes) else v for v in row] for row in rows]


def extract_sql(text: str) -> str:
    """The query in a reply: a ```sql fence, else from the first SELECT/WITH on."""
    blocks = fenced_blocks(text, ("sql", "sqlite"))
    if blocks:
        return blocks[0].strip().rstrip(";").strip()
    match = _SQL_START.search(text)
    if match is None:
        return text.strip().rstrip(";").strip()
    query = text[match.start() :]
    # Prose after the query: stop at the first semicolon or blank line.
    query = re.split(r";|\n\s*\n", query, maxsplit=1)[0]
    return query.strip()


def check_database(database: str | None) -> Path:
    if not database:
        raise ConfigError("an SQL check needs `database`: the path of a SQLite file")
    path = Path(database).expanduser()
    if not path.is_file():
        raise ConfigError(f"SQLite database not found: {path}")
    return path


def _connect_readonly(path: Path) -> sqlite3.Connection:
    # mode=ro makes SQLite itself refuse writes; query_only also covers WITH ... DELETE.
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
    connection.execute("PRAGMA query_only = ON")
    return connection


def database_schema(database: str | Path) -> str:
    """The CREATE statements of the tables and views, for feedback and tool observations."""
    try:
        with closing(_connect_readonly(Path(database))) as connection:
            rows = connection.execute(
                "SELECT sql FROM sqlite_master WHERE type IN ('table', 'view') AND sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
    except sqlite3.Error as exc:
        return f"(schema unavailable: {exc})"
    return ";\n".join(row[0] for row in rows) + ";" if rows else "(no tables)"


def run_readonly_sql(database: str | Path, sql: str, timeout_s: float = 2.0, max_rows: int = 20) -> SqlResult:
    """Run one SELECT/WITH statement read-only; errors come back in ``SqlResult.error``."""
    first_word = _SQL_COMMENT.sub(" ", sql).strip().split(None, 1)[:1]
    if not first_word or first_word[0].upper() not in {"SELECT", "WITH"}:
        shown = first_word[0] if first_word else "an empty query"
        return SqlResult(error=f"only SELECT or WITH queries are allowed, got {shown}")
    try:
        connection = _connect_readonly(Path(database))
    except sqlite3.Error as exc:
        return SqlResult(error=str(exc))
    deadline = time.monotonic() + timeout_s
    # A non-zero return aborts the statement: the time limit for runaway queries.
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        cursor = connection.execute(sql)
        rows = cursor.fetchmany(max_rows + 1)
        columns = [d[0] for d in cursor.description or []]
        return SqlResult(columns, [tuple(r) for r in rows[:max_rows]], truncated=len(rows) > max_rows)
    except sqlite3.OperationalError as exc:
        if time.monotonic() > deadline and "interrupt" in str(exc):
            return SqlResult(error=f"the query exceeded the time limit of {timeout_s:g} s")
        return SqlResult(error=str(exc))
    except (sqlite3.Error, OverflowError) as exc:
        return SqlResult(error=str(exc))
    finally:
        connection.close()


# ---- the verifiers -------------------------------------------------------------------------
@register_verifier("json_schema")
class JsonSchemaVerifier:
    def __init__(self, options: VerifierOptions) -> None:
        import jsonschema

        if options.schema is None:
            raise ConfigError("the json_schema check needs a JSON schema (`json_schema`)")
        validator_cls = jsonschema.validators.validator_for(options.schema)
        try:
            validator_cls.check_schema(options.schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"invalid JSON schema: {exc.message}") from None
        self.validator = validator_cls(options.schema)
        self.schema_text = json.dumps(options.schema, ensure_ascii=False)

    def check(self, answer_text: str, question: Question) -> Verdict:
        value = find_json(answer_text)
        if value is None:
            return Verdict(
                False, f"The answer contains no JSON. Reply with JSON matching: {self.schema_text}"
            )
        errors = sorted(self.validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"- at {_json_path(e.absolute_path)}: {e.message}" for e in errors[:5]]
            return Verdict(False, "The JSON does not match the schema:\n" + "\n".join(lines)
                           + f"\nSchema: {self.schema_text}")  # fmt: skip
        return Verdict(True, "The JSON matches the schema.", fixed=json.dumps(value, ensure_ascii=False))


@register_verifier("regex")
class RegexVerifier:
    def __init__(self, options: VerifierOptions) -> None:
        if not options.pattern:
            raise ConfigError("the regex check needs `pattern`")
        try:
            self.pattern = re.compile(options.pattern)
        except re.error as exc:
            raise ConfigError(f"invalid regex pattern {options.pattern!r}: {exc}") from None

    def check(self, answer_text: str, question: Question) -> Verdict:
        if self.pattern.search(answer_text.strip()):
            return Verdict(True, "The answer has the required format.")
        return Verdict(False, f"The answer must match the regular expression: {self.pattern.pattern}")


def _json_path(path: Any) -> str:
    return "/".join(map(str, path)) or "(root)"


def _normal_label(text: str) -> str:
    collapsed = " ".join(text.split()).casefold()
    return collapsed.strip(" \t\"'`*.。!！:：")


@register_verifier("labels")
class LabelsVerifier:
    def __init__(self, options: VerifierOptions) -> None:
        if not options.labels:
            raise ConfigError("the labels check needs `labels`: the allowed answers")
        self.labels = [str(label) for label in options.labels]
        self.by_normal = {_normal_label(label): label for label in self.labels}

    def check(self, answer_text: str, question: Question) -> Verdict:
        label = self.by_normal.get(_normal_label(answer_text))
        if label is not None:
            return Verdict(True, f"{label!r} is an allowed label.", fixed=label)
        allowed = ", ".join(self.labels)
        return Verdict(False, f"Answer with exactly one of these labels and nothing else: {allowed}.")


# Phrases that name the answer: "答案是B", "选B", "the answer is (C)", "Option D".
_EXPLICIT = [
    re.compile(r"答案\s*(?:应该|應該)?\s*(?:是|为|為|选|選)?\s*[:：]?\s*[(（\[]?\s*([A-Za-z])(?![A-Za-z])"),
    re.compile(r"(?:选|選)(?:择|擇|项|項)?\s*[:：]?\s*[(（\[]?\s*([A-Za-z])(?![A-Za-z])"),
    re.compile(r"[Aa]nswer\s*(?:is|:|=|：)?\s*(?:[Oo]ption\s*)?[(\[]?\s*([A-Z])(?![A-Za-z])"),
    re.compile(r"(?:[Oo]ption|[Cc]hoice)\s*(?:is\s*)?[(\[]?([A-Z])(?![A-Za-z])"),
]
_WHOLE = re.compile(r"^[\W_]*([A-Za-z])[\W_]*$")
_LEADING = re.compile(r"^\s*[*(\[（]*([A-Z])[*)\]）]*\s*(?:[.．、:：)）]|$)")
_STANDALONE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z'])")
# "A cat ..." and "I think ..." use A and I as words, not option letters ("A is", "A or B" do not).
_WORD_LETTER = re.compile(
    r"(?<![A-Za-z])([AI])(?= (?!(?:and|or|nor|is|are|was|were|vs|seems|looks|fits)\b)[a-z])"
)


@register_verifier("mcq")
class McqVerifier:
    def __init__(self, options: VerifierOptions) -> None:
        pass

    @staticmethod
    def extract(answer_text: str, choices: list[str]) -> tuple[str | None, str]:
        """The chosen letter, or ``None`` and the reason."""
        valid = LETTERS[: len(choices)]
        text = answer_text.strip()
        for pattern in _EXPLICIT:
            found = [m.upper() for m in pattern.findall(text)]
            if not found:
                continue
            letters = sorted(set(found))
            if len(letters) > 1:
                return None, f"the answer names several options ({', '.join(letters)})"
            if letters[0] not in valid:
                return None, f"{letters[0]} is not one of the options"
            return letters[0], ""
        for pattern in (_WHOLE, _LEADING):
            match = pattern.match(text)
            if match and match.group(1).upper() in valid:
                return match.group(1).upper(), ""
        normal = _normal_label(text)
        for letter, choice in zip(valid, choices, strict=False):
            if normal and normal == _normal_label(choice):
                return letter, ""
        words = {m.start() for m in _WORD_LETTER.finditer(text)}
        standalone = {m.group(1) for m in _STANDALONE.finditer(text) if m.start() not in words}
        letters = sorted(standalone & set(valid))
        if len(letters) == 1:
            return letters[0], ""
        if letters:
            return None, f"the answer names several options ({', '.join(letters)})"
        return None, "the answer names no option letter"

    def check(self, answer_text: str, question: Question) -> Verdict:
        if not question.choices:
            return Verdict(True, "Skipped: the question has no options.")
        letter, reason = self.extract(answer_text, question.choices)
        if letter is not None:
            return Verdict(True, f"The answer chooses option {letter}.", fixed=letter)
        valid = ", ".join(LETTERS[: len(question.choices)])
        return Verdict(False, f"Invalid choice: {reason}. Answer with exactly one option letter ({valid}), "
                              f"for example 'Answer: {LETTERS[0]}'.")  # fmt: skip


@register_verifier("sql")
class SqlVerifier:
    def __init__(self, options: VerifierOptions) -> None:
        self.database = check_database(options.database)
        if options.timeout_s <= 0:
            raise ConfigError(f"sql timeout_s must be > 0, got {options.timeout_s}")
        self.timeout_s = options.timeout_s
        self.max_rows = options.max_rows
        self._schema: str | None = None

    @property
    def schema(self) -> str:
        if self._schema is None:
            self._schema = database_schema(self.database)
        return self._schema

    def check(self, answer_text: str, question: Question) -> Verdict:
        query = extract_sql(answer_text)
        result = run_readonly_sql(self.database, query, self.timeout_s, self.max_rows)
        if result.error is not None:
            return Verdict(False, f"SQLite error: {result.error}\nQuery: {query}\n"
                                  f"Database schema:\n{self.schema}\nFix the query.")  # fmt: skip
        return Verdict(True, f"The query ran. Result: {result.preview()}", fixed=query, rows=result.rows)
