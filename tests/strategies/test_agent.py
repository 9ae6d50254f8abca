from __future__ import annotations

import json
import sqlite3
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.knowledge.retrieve import Hit
from assistant.settings import Settings
from assistant.strategies.agent import AgentStrategy, MalformedAction, parse_action
from assistant.strategies.base import parse_config, strategy_class
from assistant.types import Message, Question
from tests.strategies.fakes import CountingFake, kinds


def act(tool: str, thought: str = "", **args: Any) -> str:
    return json.dumps({"thought": thought or f"use {tool}", "action": tool, "action_input": args})


def final(answer: str, thought: str = "done") -> str:
    return json.dumps({"thought": thought, "final_answer": answer})


def build(backend: FakeBackend, settings: Settings | None = None, **config: Any) -> AgentStrategy:
    return AgentStrategy(parse_config(AgentStrategy, config), backend, settings or Settings())


def steps_of(answer: Any, kind: str) -> list[dict[str, Any]]:
    return [step.detail for step in answer.trace.steps if step.kind == kind]


class FakeKnowledgeBase:
    opened: ClassVar[list[str]] = []

    @classmethod
    def open(cls, name: str, settings: Any) -> FakeKnowledgeBase:
        cls.opened.append(name)
        return cls()

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return [
            Hit("The warranty lasts 24 months.", "warranty.pdf", 2, 0, 0.9, "w#0"),
            Hit("Repairs are free under warranty.", "warranty.pdf", 3, 1, 0.8, "w#1"),
        ][:k]


@pytest.fixture
def fake_kb(monkeypatch: pytest.MonkeyPatch) -> type[FakeKnowledgeBase]:
    module = types.ModuleType("assistant.knowledge")
    module.KnowledgeBase = FakeKnowledgeBase  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "assistant.knowledge", module)
    monkeypatch.setattr(FakeKnowledgeBase, "opened", [])
    return FakeKnowledgeBase


def test_registered_under_its_name() -> None:
    assert strategy_class("agent") is AgentStrategy


def test_calls_the_calculator_then_answers() -> None:
    fake = CountingFake([act("calculator", "I multiply.", expression="12 * 7"), final("84", "Tool: 84.")])
    [answer] = build(fake).answer([Question("What is 12 times 7?")])
    assert answer.response == "84"
    assert kinds(answer) == ["thought", "action", "observation", "thought", "final", "stop"]
    assert steps_of(answer, "thought")[0] == {"step": 1, "text": "I multiply."}
    [action], [observation] = steps_of(answer, "action"), steps_of(answer, "observation")
    assert action == {"step": 1, "tool": "calculator", "input": {"expression": "12 * 7"}}
    assert observation == {"step": 1, "tool": "calculator", "text": "84", "error": False}
    assert steps_of(answer, "stop") == [{"reason": "final_answer", "steps": 2}]
    assert answer.usage.model_calls == 2 and answer.latency_s > 0
    system, question = fake.calls[0][0]
    assert '"final_answer"' in system.content and "- calculator:" in system.content
    assert system.content.startswith("You are a helpful, precise assistant. Use a tool when it helps")
    assert "kb_search" not in system.content and question.content == "What is 12 times 7?"
    assert fake.calls[1][0][-1] == Message("user", "Observation: 84")
    assert "\nObservation:" in fake.calls[0][1].stop


def test_kb_search_fills_retrieved_contexts(fake_kb: type[FakeKnowledgeBase]) -> None:
    fake = FakeBackend([act("kb_search", query="warranty length"), final("24 months [warranty.pdf p.2]")])
    [answer] = build(fake, kb="support").answer([Question("How long is the warranty?")])
    assert answer.response == "24 months [warranty.pdf p.2]"
    assert fake_kb.opened == ["support"]
    assert answer.retrieved_contexts == ["The warranty lasts 24 months.", "Repairs are free under warranty."]
    observation = steps_of(answer, "observation")[0]["text"]
    assert observation.startswith("[1] (warranty.pdf p.2) The warranty lasts 24 months.")
    assert "- kb_search:" in fake.calls[0][0][0].content


def test_stops_at_the_step_limit() -> None:
    fake = CountingFake(default=act("calculator", expression="1 + 1"))
    [answer] = build(fake, max_steps=3).answer([Question("Loop forever")])
    assert answer.response == "I could not finish: reached the step limit (3 steps) without a final answer."
    assert len(steps_of(answer, "action")) == 3 and len(steps_of(answer, "observation")) == 3
    assert steps_of(answer, "stop") == [{"reason": "step_limit", "steps": 3}]
    assert fake.batches == [1, 1, 1] and answer.usage.model_calls == 3
    # The model was told when only one step was left.
    assert "one step left" in fake.calls[2][0][-1].content
    assert "one step left" not in fake.calls[1][0][-1].content


def test_malformed_action_gets_a_correction_and_a_retry() -> None:
    fake = FakeBackend(["The answer is probably 4.", final("4")])
    [answer] = build(fake).answer([Question("2 + 2?")])
    assert answer.response == "4"
    assert kinds(answer) == ["malformed", "thought", "final", "stop"]
    malformed = steps_of(answer, "malformed")[0]
    assert malformed["reply"] == "The answer is probably 4."
    assert "no JSON object" in malformed["error"]
    retry_conversation = fake.calls[1][0]
    assert retry_conversation[-2] == Message("assistant", "The answer is probably 4.")
    assert "not a valid action" in retry_conversation[-1].content
    assert '"final_answer"' in retry_conversation[-1].content


def test_repeated_malformed_output_ends_gracefully() -> None:
    fake = FakeBackend([act("calculator", expression="2 + 2"), "hmm", '{"action": "web_search"}', "unused"])
    [answer] = build(fake, max_retries_on_malformed=1).answer([Question("2 + 2?")])
    assert answer.response.startswith("I could not finish: the model did not reply with a valid action")
    assert "unknown tool 'web_search'" in answer.response
    assert kinds(answer) == ["thought", "action", "observation", "malformed", "malformed", "stop"]
    assert steps_of(answer, "stop") == [{"reason": "malformed", "steps": 1}]
    assert answer.usage.model_calls == 3 and fake.pending == 1


def test_batches_questions_until_each_finishes() -> None:
    fake = CountingFake([
        act("calculator", expression="6 * 7"), final("fast"),  # turn 1: q1 acts, q2 answers
        final("42"),  # turn 2: only q1
    ])  # fmt: skip
    slow, fast = build(fake).answer([Question("q1"), Question("q2")])
    assert (slow.response, fast.response) == ("42", "fast")
    assert fake.batches == [2, 1]
    assert (slow.usage.model_calls, fast.usage.model_calls) == (2, 1)


def test_tool_errors_become_observations() -> None:
    fake = FakeBackend([act("calculator", expression="__import__('os').system('ls')"), final("cannot")])
    [answer] = build(fake).answer([Question("hack")])
    observation = steps_of(answer, "observation")[0]
    assert observation["error"] is True and "only these functions can be called" in observation["text"]
    assert answer.response == "cannot"


def test_native_tool_calls_are_honoured() -> None:
    native = {"content": "", "tool_calls": [{"name": "calculator", "args": {"expression": "2**5"}}]}
    fake = FakeBackend([native, final("32")])
    [answer] = build(fake).answer([Question("2 to the 5th?")])
    assert steps_of(answer, "observation")[0]["text"] == "32" and answer.response == "32"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"thought": "t", "action": "calculator", "action_input": {"expression": "1+1"}}',
         ("calculator", {"expression": "1+1"}, None)),
        ("```json\n{'thought': 't', 'action': 'calculator', 'action_input': {'expression': '2*3'},}\n``` ok",
         ("calculator", {"expression": "2*3"}, None)),
        ('Let me think. {"thought": "t", "action": "calculator", "action_input": "3-1"} and more {"x": 1}',
         ("calculator", "3-1", None)),
        ('{"thought": "t", "final_answer": 42}', (None, None, "42")),
        ('{"thought": "t", "final_answer": "Paris"}\nObservation: ignored', (None, None, "Paris")),
        ('{"action": "Final Answer", "action_input": "Rome"}', (None, None, "Rome")),
        ("Thought: easy\nFinal Answer: Oslo", (None, None, "Oslo")),
        ('{"tool": "calculator", "args": {"expression": "5"}}', ("calculator", {"expression": "5"}, None)),
    ],
)  # fmt: skip
def test_parse_action(text: str, expected: tuple[Any, Any, Any]) -> None:
    action = parse_action(text, ["calculator", "kb_search"])
    assert (action.tool, action.tool_input, action.final_answer) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("I don't know", "no JSON object"),
        ('{"thought": "t", "action": "browser", "action_input": {}}', "unknown tool 'browser'"),
        ('{"thought": "t", "final_answer": ""}', "final_answer is empty"),
        ('{"thought": "only thinking"}', "no JSON object"),
    ],
)
def test_parse_action_errors(text: str, error: str) -> None:
    with pytest.raises(MalformedAction, match=error):
        parse_action(text, ["calculator"])


def test_tools_follow_the_config(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    assert build(FakeBackend()).tools == ["calculator"]
    assert build(FakeBackend(), kb="kb", database=str(db)).tools == ["calculator", "kb_search", "sql_query"]
    assert build(FakeBackend(), tools=["calculator", "calculator"]).tools == ["calculator"]
    with pytest.raises(ConfigError, match="kb_search tool needs `kb`"):
        parse_config(AgentStrategy, {"tools": ["kb_search"]})
    with pytest.raises(ConfigError, match="unknown tool 'browser'"):
        parse_config(AgentStrategy, {"tools": ["browser"]})
    with pytest.raises(ConfigError, match="max_steps must be > 0"):
        parse_config(AgentStrategy, {"max_steps": 0})
    with pytest.raises(ConfigError, match="max_retries_on_malformed must be >= 0"):
        parse_config(AgentStrategy, {"max_retries_on_malformed": -1})
    with pytest.raises(ConfigError, match="not found"):
        build(FakeBackend(), database=str(tmp_path / "missing.db"))


def test_empty_batch_and_cost() -> None:
    strategy = build(FakeBackend(), max_steps=2)
    assert strategy.answer([]) == []
    cost = strategy.cost()
    assert cost.model_calls == 2 and cost.prompt_tokens > 2 * strategy.base_prompt_tokens()
