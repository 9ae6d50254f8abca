from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.backends.base import LLMBackend, backend_class, register_backend, trim_at_stop
from assistant.backends.fake import FakeBackend, count_tokens
from assistant.errors import ConfigError
from assistant.types import Completion, GenParams, Message, Usage, user


def test_scripted_replies_in_order_then_echo() -> None:
    fake = FakeBackend(["first", "second"])
    out = fake.generate([user("a"), user("b"), user("c")], GenParams())
    assert [c.text for c in out] == ["first", "second", "[fake] c"]
    assert fake.pending == 0
    assert [conv[-1].content for conv, _ in fake.calls] == ["a", "b", "c"]


def test_usage_stop_and_max_tokens() -> None:
    fake = FakeBackend(["one two three four five", "alpha STOP beta", "好的"])
    cut, stopped, chinese = fake.generate([user("q")] * 3, GenParams(max_new_tokens=3, stop=("STOP",)))
    assert cut.text == "one two three" and cut.finish_reason == "length"
    assert stopped.text == "alpha " and stopped.finish_reason == "stop"
    assert chinese.usage == Usage(prompt_tokens=1, completion_tokens=2, model_calls=1)


def test_default_can_be_a_function() -> None:
    fake = FakeBackend(default=lambda conv: conv[-1].content.upper())
    assert fake.generate([user("shout")], GenParams())[0].text == "SHOUT"


def test_completion_objects_pass_through() -> None:
    scripted = Completion("x", Usage(10, 1, 1), 0.5, "other")
    assert FakeBackend([scripted]).generate([user("q")], GenParams())[0] is scripted


def test_script_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"replies": [{"content": "", "tool_calls": [{"name": "t", "args": {"a": 1}}]}],
                                "default": "done"}))  # fmt: skip
    fake = FakeBackend.from_file(path)
    first, second = fake.generate([user("q"), user("q")], GenParams())
    assert first.tool_calls[0].name == "t" and first.tool_calls[0].args == {"a": 1}
    assert first.finish_reason == "tool_calls"
    assert second.text == "done"
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigError, match=r"bad\.json:1: invalid JSON"):
        FakeBackend.from_file(tmp_path / "bad.json")


def test_score_choices_scripted_then_deterministic() -> None:
    fake = FakeBackend(choice_scores=[[-0.1, -2.0]])
    assert fake.score_choices(["p"], ["A", "B"]) == [[-0.1, -2.0]]
    first = fake.score_choices(["p", "q"], ["A", "B"])
    assert first == fake.score_choices(["p", "q"], ["A", "B"])
    assert first[0] != first[1]
    fake.enqueue_scores([[0.0]])
    with pytest.raises(ValueError, match="1 values for 2 choices"):
        fake.score_choices(["p"], ["A", "B"])


def test_protocol_and_registry() -> None:
    assert isinstance(FakeBackend(), LLMBackend)
    assert backend_class("fake") is FakeBackend
    with pytest.raises(KeyError, match="already registered"):
        register_backend("fake", "x:Y")
    with pytest.raises(KeyError, match="unknown backend"):
        backend_class("nope")


def test_trim_at_stop_picks_the_earliest() -> None:
    assert trim_at_stop("a END b STOP c", ["STOP", "END"]) == ("a ", True)
    assert trim_at_stop("abc", ["x"]) == ("abc", False)
    assert count_tokens("我爱 Python code") == 4


def test_langgraph_agent_runs_scripted_tool_calls() -> None:
    """A real LangGraph tool loop driven by the fake: call a tool, read it, answer."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    seen: list[int] = []

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        seen.append(a + b)
        return a + b

    fake = FakeBackend([
        {"content": "", "tool_calls": [{"name": "add", "args": {"a": 2, "b": 40}}]},
        "The sum is 42.",
    ])  # fmt: skip
    agent = create_react_agent(fake.chat_model(), [add])
    result = agent.invoke({"messages": [HumanMessage("what is 2 + 40?")]})
    messages = result["messages"]
    assert seen == [42]
    assert isinstance(messages[-2], ToolMessage) and messages[-2].content == "42"
    assert messages[-1].content == "The sum is 42."
    # The tool spec reached the backend, and the tool result was sent back as a tool message.
    first_params, second_conv = fake.calls[0][1], fake.calls[1][0]
    assert [t["function"]["name"] for t in first_params.tools] == ["add"]
    assert second_conv[-1] == Message("tool", "42", tool_call_id=second_conv[-2].tool_calls[0].id, name="add")
