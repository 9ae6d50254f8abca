"""Replies constrained to a JSON schema, without changing the backend contract.

A caller that wants JSON of a known shape (the LLM judge: ragas parses every reply into a
pydantic model) sets the schema for the duration of one call::

    with respond_with_schema(Model.model_json_schema()):
        completions = backend.generate([conversation], params)

The schema lives in a ``ContextVar`` (like the stream sink in ``streaming.py``), so backends
that cannot constrain ignore it and wrappers pass it through untouched. ``openai_compat``
sends it as ``response_format``; ``hf_local`` decodes under ``JsonGrammar`` (a logits
processor in ``hf/constrained.py``); ``fake`` records it.

``JsonGrammar`` is a character-level recogniser for the subset of JSON Schema that pydantic
writes for plain models: objects (every property, in schema order), arrays, strings,
integers, numbers, booleans, null and ``$ref`` to ``$defs``. It also knows the shortest text
that completes a prefix (``completion``), so a decoder can always close the JSON before its
token budget runs out. A schema outside the subset (``anyOf``, ``enum``...) raises
``UnsupportedSchema``; callers then decode unconstrained.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

_SCHEMA: ContextVar[dict[str, Any] | None] = ContextVar("ladder_response_schema", default=None)

# Limits that keep a constrained reply finite whatever the model prefers: a run of
# whitespace, the characters of one string, the digits of one number, the items of one array.
# An array of strings also ends at the first repeated item (see ``_string_ended``).
MAX_WHITESPACE = 24
MAX_STRING_CHARS = 800
MAX_DIGITS = 9
MAX_ITEMS = 64
_ESCAPES = frozenset('"\\/bfnrt')
_WHITESPACE = frozenset(" \t\n\r")


@contextmanager
def respond_with_schema(schema: Mapping[str, Any] | None) -> Iterator[None]:
    """Ask backends that can constrain their replies to answer with JSON matching ``schema``."""
    token = _SCHEMA.set(dict(schema) if schema is not None else None)
    try:
        yield
    finally:
        _SCHEMA.reset(token)


def current_schema() -> dict[str, Any] | None:
    return _SCHEMA.get()


class UnsupportedSchema(ValueError):
    """The schema uses JSON Schema features ``JsonGrammar`` does not decode."""


# ---- the schema as a tree of nodes -------------------------------------------------------
@dataclass(frozen=True)
class Node:
    kind: str  # string, integer, number, boolean, null, array, object
    item: Node | None = None  # array items
    pieces: tuple[tuple[str, Any], ...] = ()  # object: ("lit", text) and ("val", Node) in order


def compile_schema(schema: Mapping[str, Any]) -> Node:
    """The schema as ``Node``s (``$ref`` resolved against its ``$defs``)."""
    defs = dict(schema.get("$defs", {}))
    return _node(schema, defs, depth=0)


def _node(schema: Mapping[str, Any], defs: dict[str, Any], depth: int) -> Node:
    if depth > 16:
        raise UnsupportedSchema("schema nests deeper than 16 levels (a recursive $ref?)")
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        if name not in defs:
            raise UnsupportedSchema(f"unresolved $ref {schema['$ref']!r}")
        return _node(defs[name], defs, depth + 1)
    for feature in ("anyOf", "oneOf", "allOf", "enum", "const", "patternProperties"):
        if feature in schema:
            raise UnsupportedSchema(f"{feature} is not supported")
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind in ("string", "integer", "number", "boolean", "null"):
        return Node(str(kind))
    if kind == "array":
        return Node("array", item=_node(schema.get("items", {"type": "string"}), defs, depth + 1))
    if kind == "object":
        pieces: list[tuple[str, Any]] = [("lit", "{")]
        for index, (key, sub) in enumerate(dict(schema.get("properties", {})).items()):
            if index:
                pieces.append(("lit", ","))
            pieces += [("lit", _quoted(key)), ("lit", ":"), ("val", _node(sub, defs, depth + 1))]
        pieces.append(("lit", "}"))
        return Node("object", pieces=tuple(pieces))
    raise UnsupportedSchema(f"type {kind!r} is not supported")


def _quoted(key: str) -> str:
    import json

    return json.dumps(key, ensure_ascii=False)


def minimal(node: Node) -> str:
    """The shortest JSON text that matches ``node``."""
    if node.kind == "string":
        return '""'
    if node.kind in ("integer", "number"):
        return "0"
    if node.kind == "boolean":
        return "false"
    if node.kind == "null":
        return "null"
    if node.kind == "array":
        return "[]"
    return "".join(text if kind == "lit" else minimal(text) for kind, text in node.pieces)


# ---- the recogniser --------------------------------------------------------------------
# A state is (stack of frames, whitespace run). Frames are tuples, so a state is immutable
# and a decoder can try a token on it without copying. A frame that has finished is popped
# at once, except a number, which only ends when a character that is not part of it comes.
#   ("v", node)                 a value of ``node`` is expected (whitespace first is fine)
#   ("s", text, escaped)        inside a string: its text so far (escapes as written)
#   ("n", node, phase, digits)  inside a number: phase sign | zero | int | dot | frac
#   ("l", text, pos)            inside a literal (true, false, null)
#   ("o", pieces, index, pos)   inside an object: the next piece, chars of it matched
#   ("a", item, phase, count, seen)  inside an array: phase first | after | next | end;
#                               seen: the string items so far (a repeated one ends the array)
State = tuple[tuple[tuple[Any, ...], ...], int]
_NUMBER_DONE = ("zero", "int", "frac")


class JsonGrammar:
    """Which texts can continue a JSON reply of one schema, one character at a time."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.root = compile_schema(schema)

    def start(self) -> State:
        return ((("v", self.root),), 0)

    def advance(self, state: State, text: str) -> State | None:
        """The state after ``text``, or None when ``text`` cannot continue a valid reply."""
        for char in text:
            next_state = _step(state, char)
            if next_state is None:
                return None
            state = next_state
        return state

    @staticmethod
    def complete(state: State) -> bool:
        """Whether the text so far is a whole reply (nothing more may follow)."""
        stack = state[0]
        return not stack or (len(stack) == 1 and stack[0][0] == "n" and stack[0][2] in _NUMBER_DONE)

    @staticmethod
    def completion(state: State) -> str:
        """The shortest text that turns the reply so far into a whole one."""
        out: list[str] = []
        for frame in reversed(state[0]):
            tag = frame[0]
            if tag == "v":
                out.append(minimal(frame[1]))
            elif tag == "s":
                out.append(("n" if frame[2] else "") + '"')
            elif tag == "n":
                out.append("0" if frame[2] in ("sign", "dot") else "")
            elif tag == "l":
                out.append(frame[1][frame[2] :])
            elif tag == "o":
                _, pieces, index, pos = frame
                if pos:
                    out.append(pieces[index][1][pos:])
                    index += 1
                out += [text if kind == "lit" else minimal(text) for kind, text in pieces[index:]]
            else:  # array
                out.append((minimal(frame[1]) if frame[2] == "next" else "") + "]")
        return "".join(out)


def _step(state: State, char: str) -> State | None:
    stack, spaces = state
    if not stack:
        return None
    frame, rest = stack[-1], stack[:-1]
    tag = frame[0]
    if tag == "s":
        return _string(frame, rest, char, spaces)
    if tag == "n":
        return _number(frame, rest, char, spaces)
    if tag == "l":
        text, pos = frame[1], frame[2]
        if char != text[pos]:
            return None
        return (rest if pos + 1 == len(text) else (*rest, ("l", text, pos + 1)), 0)
    if char in _WHITESPACE:
        if tag == "o" and frame[3]:
            return None  # no whitespace inside a key
        return (stack, spaces + 1) if spaces < MAX_WHITESPACE else None
    if tag == "v":
        return _value_start(frame[1], rest, char)
    if tag == "o":
        return _object(frame, rest, char)
    return _array(frame, rest, char)


def _value_start(node: Node, rest: tuple[Any, ...], char: str) -> State | None:
    kind = node.kind
    if kind == "string":
        return ((*rest, ("s", "", False)), 0) if char == '"' else None
    if kind in ("integer", "number"):
        if char == "-":
            return ((*rest, ("n", node, "sign", 0)), 0)
        if char.isascii() and char.isdigit():
            return ((*rest, ("n", node, "zero" if char == "0" else "int", 1)), 0)
        return None
    if kind == "boolean" and char in "tf":
        text = "true" if char == "t" else "false"
        return ((*rest, ("l", text, 1)), 0)
    if kind == "null" and char == "n":
        return ((*rest, ("l", "null", 1)), 0)
    if kind == "object" and char == "{":
        return ((*rest, ("o", node.pieces, 1, 0)), 0)
    if kind == "array" and char == "[":
        return ((*rest, ("a", node.item, "first", 0, frozenset())), 0)
    return None


def _string(frame: tuple[Any, ...], rest: tuple[Any, ...], char: str, spaces: int) -> State | None:
    _, text, escaped = frame
    if escaped:
        return ((*rest, ("s", text + char, False)), 0) if char in _ESCAPES else None
    if char == '"':
        return (_string_ended(rest, text), 0)
    if ord(char) < 0x20 or len(text) >= MAX_STRING_CHARS:
        return None
    return ((*rest, ("s", text + char, char == "\\")), 0)


def _string_ended(rest: tuple[Any, ...], text: str) -> tuple[Any, ...]:
    """The stack once a string closes. A string repeated in the same array ends the array:
    small models repeat one statement until the token budget runs out."""
    if not rest or rest[-1][0] != "a":
        return rest
    _, item, phase, count, seen = rest[-1]
    if text in seen:
        return (*rest[:-1], ("a", item, "end", count, seen))
    return (*rest[:-1], ("a", item, phase, count, seen | {text}))


def _number(frame: tuple[Any, ...], rest: tuple[Any, ...], char: str, spaces: int) -> State | None:
    _, node, phase, digits = frame
    digit = char.isascii() and char.isdigit()
    if phase in ("sign", "dot"):
        if not digit:
            return None
        next_phase = "frac" if phase == "dot" else ("zero" if char == "0" else "int")
        return ((*rest, ("n", node, next_phase, digits + 1)), 0)
    if digit and phase != "zero":
        return ((*rest, ("n", node, phase, digits + 1)), 0) if digits < MAX_DIGITS else None
    if char == "." and node.kind == "number" and phase in ("zero", "int"):
        return ((*rest, ("n", node, "dot", digits)), 0)
    if digit:
        return None  # no digit after a leading zero
    return _step((rest, spaces), char)  # the number ended: the character belongs to its parent


def _object(frame: tuple[Any, ...], rest: tuple[Any, ...], char: str) -> State | None:
    _, pieces, index, pos = frame
    kind, piece = pieces[index]
    if kind == "val":
        # The object moves past the value now; the value's own frame goes on top.
        parent = ("o", pieces, index + 1, 0)
        return _value_start(piece, (*rest, parent), char)
    if char != piece[pos]:
        return None
    if pos + 1 < len(piece):
        return ((*rest, ("o", pieces, index, pos + 1)), 0)
    if index + 1 == len(pieces):
        return (rest, 0)  # the closing brace
    return ((*rest, ("o", pieces, index + 1, 0)), 0)


def _array(frame: tuple[Any, ...], rest: tuple[Any, ...], char: str) -> State | None:
    _, item, phase, count, seen = frame
    if phase in ("first", "after", "end") and char == "]":
        return (rest, 0)
    if phase == "end":
        return None
    if phase == "after":
        return ((*rest, ("a", item, "next", count, seen)), 0) if char == "," and count < MAX_ITEMS else None
    return _value_start(item, (*rest, ("a", item, "after", count + 1, seen)), char)


__all__ = [
    "JsonGrammar",
    "UnsupportedSchema",
    "compile_schema",
    "current_schema",
    "respond_with_schema",
]
