"""Parse tool calls that a local model writes as text.

Qwen2.5 and other Hermes-style chat templates ask the model to answer with
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; small models also often emit
the bare JSON object. Both become structured ``ToolCall`` objects here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from assistant.types import ToolCall

_TAGGED = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def _to_call(obj: Any, known: set[str]) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    args = obj.get("arguments", obj.get("args", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            args = {"_raw": args}
    if not isinstance(name, str) or (known and name not in known) or not isinstance(args, dict):
        return None
    return ToolCall(name, args)


def parse_tool_calls(text: str, known_tools: set[str] | None = None) -> tuple[str, list[ToolCall]]:
    """Return the text without the tool-call markup, and the calls found in it."""
    known = known_tools or set()
    calls: list[ToolCall] = []
    for match in _TAGGED.finditer(text):
        try:
            call = _to_call(json.loads(match.group(1)), known)
        except json.JSONDecodeError:
            call = None
        if call:
            calls.append(call)
    if calls:
        return _TAGGED.sub("", text).strip(), calls
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            call = _to_call(json.loads(stripped), known)
        except json.JSONDecodeError:
            call = None
        if call:
            return "", [call]
    return text, []
