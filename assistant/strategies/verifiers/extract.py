"""Finding JSON in a model's reply: fenced blocks, then every opening bracket, strict and then
lenient. Shared by the JSON-schema and SQL verifiers and the agent's action parser."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

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
