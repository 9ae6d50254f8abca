"""Tools the agent can call, and the tool registry.

A tool is a function ``(args, context) -> str | ToolResult`` registered by name with a
description and its arguments (which go into the agent's prompt). A second registration
of a name is refused. Users add their own tools the same way::

    @register_tool("weather", "Today's weather in a city.", args={"city": "the city name"})
    def weather(args: dict[str, Any], context: ToolContext) -> str: ...

Bad input from the model is a ``ToolError``: the agent shows its message as the observation
so the model can correct itself.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.registry import Registry
from assistant.strategies.verifiers import database_schema, json_safe_rows, run_readonly_sql

if TYPE_CHECKING:
    from assistant.settings import Settings


class ToolError(Exception):
    """The model called a tool with input it cannot use; the message is the observation."""


@dataclass
class ToolResult:
    observation: str
    # Texts the tool retrieved, for ``Answer.retrieved_contexts``.
    contexts: list[str] = field(default_factory=list)
    data: Any = None


@dataclass
class ToolContext:
    """What tools may use: the settings and the resources the strategy was configured with."""

    settings: Settings | None = None
    kb: str | None = None
    kb_top_k: int = 3
    database: str | None = None
    sql_timeout_s: float = 2.0
    max_rows: int = 20
    _knowledge_base: Any = field(default=None, repr=False)

    def knowledge_base(self) -> Any:
        """The configured knowledge base, opened on first use (it loads an embedding model)."""
        if self._knowledge_base is None:
            if not self.kb:
                raise ToolError("no knowledge base is configured")
            from assistant.knowledge import KnowledgeBase
            from assistant.settings import load_settings

            settings = self.settings if self.settings is not None else load_settings()
            self._knowledge_base = KnowledgeBase.open(self.kb, settings)
        return self._knowledge_base


ToolFunction = Callable[[dict[str, Any], ToolContext], str | ToolResult]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: dict[str, str]  # argument name -> description
    function: ToolFunction
    optional: tuple[str, ...] = ()
    # ToolContext fields that must be set for the tool to be offered ("kb", "database").
    requires: tuple[str, ...] = ()

    def describe(self) -> str:
        example = ", ".join(f'"{name}": <{text}>' for name, text in self.args.items())
        return f"- {self.name}: {self.description} action_input: {{{example}}}"


# Tools by name: their specs are registered as objects (a tool is defined where it is registered).
TOOLS: Registry[ToolSpec] = Registry("tool")


def register_tool(
    name: str,
    description: str,
    args: dict[str, str],
    optional: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
) -> Callable[[ToolFunction], ToolFunction]:
    """Decorator: register a tool under ``name``; a second ``name`` raises ``KeyError``."""

    def decorate(function: ToolFunction) -> ToolFunction:
        spec = ToolSpec(name, description, dict(args), function, tuple(optional), tuple(requires))
        TOOLS.register(name, spec)
        return function

    return decorate


def tool_names() -> list[str]:
    return TOOLS.names()


def get_tool(name: str) -> ToolSpec:
    """The tool registered as ``name``; an unknown name is a ``ConfigError`` listing the known."""
    return TOOLS.get(name)


def coerce_args(spec: ToolSpec, raw: Any) -> dict[str, Any]:
    """The model's ``action_input`` as keyword arguments; a bare value fills a one-argument tool."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        required = [name for name in spec.args if name not in spec.optional]
        if len(required) != 1:
            keys = ", ".join(spec.args)
            raise ToolError(f"action_input for {spec.name} must be an object with keys: {keys}")
        raw = {required[0]: raw}
    missing = [name for name in spec.args if name not in spec.optional and name not in raw]
    if missing:
        raise ToolError(f"{spec.name} needs {', '.join(missing)} in action_input")
    return {key: value for key, value in raw.items() if key in spec.args}


def run_tool(name: str, raw_args: Any, context: ToolContext) -> ToolResult:
    """Call a tool; ``ToolError`` (bad model input) propagates for the caller to show."""
    spec = get_tool(name)
    result = spec.function(coerce_args(spec, raw_args), context)
    return result if isinstance(result, ToolResult) else ToolResult(str(result))


# ---- calculator -----------------------------------------------------------------------------
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "log": math.log, "log10": math.log10, "log2": math.log2, "exp": math.exp,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "abs": abs, "round": round,
    "floor": math.floor, "ceil": math.ceil,
}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION_CHARS = 300
MAX_EXPONENT = 10_000
MAX_INT_BITS = 4_096


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError(f"the result is too large (over {MAX_INT_BITS} bits)")
    return value


def _power(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"the exponent {exponent} is too large (limit {MAX_EXPONENT})")
    # Estimate the size before computing: 10 ** 5000 is quick, but it is not a calculation.
    exact = isinstance(base, int) and isinstance(exponent, int)
    if exact and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise ToolError(f"the result is too large (over {MAX_INT_BITS} bits)")
    return base**exponent


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError(f"only numbers are allowed, got {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords or len(node.args) > 2:
            raise ToolError(f"{node.func.id}() takes one or two positional numbers")
        return _check_size(_FUNCTIONS[node.func.id](*(_evaluate(arg) for arg in node.args)))
    allowed = ", ".join([*_FUNCTIONS, *_CONSTANTS])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        raise ToolError(f"the function {node.func.id!r} is not allowed; allowed: {allowed}")
    if isinstance(node, ast.Call):
        raise ToolError(f"only these functions can be called: {allowed}")
    if isinstance(node, ast.Name):
        raise ToolError(f"unknown name {node.id!r}; allowed: {allowed}")
    raise ToolError(f"{type(node).__name__} is not allowed; use numbers, + - * / // % ** and parentheses")


def calculate(expression: str) -> int | float:
    """Evaluate arithmetic safely: a whitelist over the parsed expression, never ``eval``."""
    text = str(expression).strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    # What people (and small models) write for power, times and divide.
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"cannot parse {text!r}: {exc.msg}") from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"math error: {exc}") from None
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    return value


def format_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".12g") if isinstance(value, float) else str(value)


@register_tool(
    "calculator",
    "Evaluate an arithmetic expression: numbers, + - * / // % ** (), sqrt, log, exp, sin, cos, tan, pi.",
    args={"expression": "the expression, e.g. (12 + 3) * 4"},
)
def calculator(args: dict[str, Any], context: ToolContext) -> ToolResult:
    value = calculate(args["expression"])
    return ToolResult(format_number(value), data=value)


# ---- knowledge base -------------------------------------------------------------------------
@register_tool(
    "kb_search",
    "Search the knowledge base; returns the most relevant passages with their sources.",
    args={"query": "what to look for", "k": "how many passages (optional)"},
    optional=("k",),
    requires=("kb",),
)
def kb_search(args: dict[str, Any], context: ToolContext) -> ToolResult:
    query = str(args["query"]).strip()
    if not query:
        raise ToolError("kb_search needs a non-empty query")
    try:
        k = int(args.get("k") or context.kb_top_k)
    except (TypeError, ValueError):
        raise ToolError(f"k must be a whole number, got {args.get('k')!r}") from None
    hits = context.knowledge_base().search(query, k=max(1, min(k, 20)))
    if not hits:
        return ToolResult("No passages found.")
    lines = []
    for number, hit in enumerate(hits, start=1):
        where = hit.source_name + (f" p.{hit.page}" if hit.page is not None else "")
        lines.append(f"[{number}] ({where}) {hit.text}")
    return ToolResult("\n".join(lines), contexts=[hit.text for hit in hits], data=hits)


# ---- SQL ------------------------------------------------------------------------------------
@register_tool(
    "sql_query",
    "Run one read-only SQL SELECT query on the database; returns the rows or the SQLite error and schema.",
    args={"query": "the SQL SELECT statement"},
    requires=("database",),
)
def sql_query(args: dict[str, Any], context: ToolContext) -> ToolResult:
    if not context.database:
        raise ToolError("no database is configured")
    result = run_readonly_sql(context.database, str(args["query"]), context.sql_timeout_s, context.max_rows)
    if result.error is not None:
        schema = database_schema(context.database)
        return ToolResult(f"SQLite error: {result.error}\nDatabase schema:\n{schema}")
    return ToolResult(result.preview(context.max_rows), data=json_safe_rows(result.rows))
