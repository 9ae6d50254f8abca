from __future__ import annotations

import sqlite3
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assistant.errors import ConfigError
from assistant.knowledge.retrieve import Hit
from assistant.settings import Settings
from assistant.strategies import tools
from assistant.strategies.tools import (
    ToolContext,
    ToolError,
    ToolResult,
    calculate,
    get_tool,
    register_tool,
    run_tool,
    tool_names,
)


class FakeKnowledgeBase:
    opened: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.queries: list[tuple[str, int]] = []

    @classmethod
    def open(cls, name: str, settings: Any) -> FakeKnowledgeBase:
        cls.opened.append((name, settings))
        return cls([
            # Sources are the paths files were ingested from; the model sees file names only.
            Hit("Refunds take 14 days.", "/srv/ladder/ui/uploads/hr/policy.pdf", 3, 0, 0.9, "policy.pdf#0"),
            Hit("Shipping is free over 50 EUR.", "/srv/ladder/ui/uploads/faq.md", None, 2, 0.7, "faq.md#2"),
        ])  # fmt: skip

    def search(self, query: str, k: int = 5) -> list[Hit]:
        self.queries.append((query, k))
        return self.hits[:k]


@pytest.fixture
def fake_kb(monkeypatch: pytest.MonkeyPatch) -> type[FakeKnowledgeBase]:
    """Stand-in for ``assistant.knowledge`` (the real one is built elsewhere)."""
    module = types.ModuleType("assistant.knowledge")
    module.KnowledgeBase = FakeKnowledgeBase  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "assistant.knowledge", module)
    monkeypatch.setattr(FakeKnowledgeBase, "opened", [])
    return FakeKnowledgeBase


def make_db(path: Path) -> Path:
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);"
            "INSERT INTO orders (total) VALUES (10.5), (20.0);"
        )
    connection.close()
    return path


# ---- registry -----------------------------------------------------------------------------
def test_registry_refuses_duplicates_and_accepts_user_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"calculator", "kb_search", "sql_query"} <= set(tool_names())
    with pytest.raises(KeyError, match="already registered"):
        register_tool("calculator", "again", args={})(lambda args, ctx: "x")
    with pytest.raises(ConfigError, match="unknown tool 'nope'"):
        get_tool("nope")
    monkeypatch.setattr(tools, "TOOLS", tools.TOOLS.copy())

    @register_tool("shout", "Upper-case a text.", args={"text": "the text"})
    def shout(args: dict[str, Any], context: ToolContext) -> str:
        return str(args["text"]).upper()

    assert run_tool("shout", {"text": "hi", "extra": 1}, ToolContext()) == ToolResult("HI")
    # A bare value fills a one-argument tool: small models often send just the string.
    assert run_tool("shout", "hey", ToolContext()).observation == "HEY"
    with pytest.raises(ToolError, match="shout needs text"):
        run_tool("shout", {}, ToolContext())
    assert get_tool("shout").describe() == '- shout: Upper-case a text. action_input: {"text": <the text>}'


# ---- calculator ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("10 / 4", "2.5"),
        ("2 ** 10", "1024"),
        ("2^10", "1024"),
        ("6 × 7 ÷ 2", "21"),
        ("sqrt(16) + log(1)", "4"),
        ("round(pi, 3)", "3.142"),
        ("sin(0) + cos(0)", "1"),
        ("-(-3)", "3"),
        ("1 / 3", "0.333333333333"),
    ],
)
def test_calculator_values(expression: str, expected: str) -> None:
    assert run_tool("calculator", {"expression": expression}, ToolContext()).observation == expected


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("__import__('os')", "the function '__import__' is not allowed"),
        ("__import__('os').system('echo hi')", "only these functions can be called"),
        ("(1).__class__", "Attribute is not allowed"),
        ("().__class__.__bases__[0].__subclasses__()", "only these functions can be called"),
        ("().__class__", "Attribute is not allowed"),
        ("open('/etc/passwd')", "the function 'open' is not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[1, 2]", "List is not allowed"),
        ("1 < 2", "Compare is not allowed"),
        ("9 ** 9 ** 9", "too large"),
        ("2 ** 100000", "too large"),
        ("10 ** 5000", "too large"),
        ("(2 ** 4000) * (2 ** 4000)", "too large"),
        ("2.0 ** 5000", "too large"),
        ("exp(1000)", "too large"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("(-8) ** 0.5", "not a real number"),
        ("sqrt(x=4)", "positional"),
        ("2 +", "cannot parse"),
        ("1" + "+1" * 200, "longer than 300"),
    ],
)
def test_calculator_refuses(expression: str, error: str) -> None:
    with pytest.raises(ToolError, match=error):
        calculate(expression)


# ---- kb_search ----------------------------------------------------------------------------
def test_kb_search_opens_lazily_and_returns_contexts(fake_kb: type[FakeKnowledgeBase]) -> None:
    settings = Settings()
    context = ToolContext(settings=settings, kb="handbook", kb_top_k=2)
    assert fake_kb.opened == []
    result = run_tool("kb_search", {"query": "refund time"}, context)
    assert fake_kb.opened == [("handbook", settings)]
    assert result.observation == (
        "[1] (policy.pdf p.3) Refunds take 14 days.\n[2] (faq.md) Shipping is free over 50 EUR."
    )
    assert result.contexts == ["Refunds take 14 days.", "Shipping is free over 50 EUR."]
    run_tool("kb_search", {"query": "shipping", "k": 1}, context)
    assert fake_kb.opened == [("handbook", settings)]  # opened once
    assert context.knowledge_base().queries == [("refund time", 2), ("shipping", 1)]


def test_kb_search_bad_input_and_no_kb(fake_kb: type[FakeKnowledgeBase]) -> None:
    with pytest.raises(ToolError, match="no knowledge base is configured"):
        run_tool("kb_search", {"query": "x"}, ToolContext())
    context = ToolContext(kb="handbook")
    with pytest.raises(ToolError, match="non-empty query"):
        run_tool("kb_search", {"query": "  "}, context)
    with pytest.raises(ToolError, match="k must be a whole number"):
        run_tool("kb_search", {"query": "x", "k": "many"}, context)
    assert fake_kb.opened == []
    assert get_tool("kb_search").requires == ("kb",)


# ---- sql_query ----------------------------------------------------------------------------
def test_sql_query_tool(tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.db")
    context = ToolContext(database=str(db))
    ok = run_tool("sql_query", {"query": "SELECT sum(total) AS revenue FROM orders"}, context)
    assert ok.observation == "1 row(s)\nrevenue\n30.5" and ok.data == [[30.5]]
    bad = run_tool("sql_query", {"query": "SELECT revenue FROM orders"}, context)
    assert "SQLite error: no such column: revenue" in bad.observation
    assert "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)" in bad.observation
    refused = run_tool("sql_query", "DROP TABLE orders", context)
    assert "only SELECT or WITH" in refused.observation
    with pytest.raises(ToolError, match="no database"):
        run_tool("sql_query", {"query": "SELECT 1"}, ToolContext())
