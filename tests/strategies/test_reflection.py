from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend, count_tokens
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.strategies import verifiers
from assistant.strategies.base import parse_config, strategy_class
from assistant.strategies.reflection import ReflectionStrategy, parse_critique
from assistant.strategies.verifiers import Verdict, VerifierOptions, register_verifier
from assistant.types import Message, Question, Usage
from tests.strategies.fakes import CountingFake, kinds


def build(backend: FakeBackend, **config: Any) -> ReflectionStrategy:
    strategy = ReflectionStrategy(parse_config(ReflectionStrategy, config), backend, Settings())
    return strategy


def make_db(path: Path) -> Path:
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(
            "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, salary INTEGER);"
            "INSERT INTO employees (name, salary) VALUES ('ann', 5000), ('bob', 7000), ('cy', 6000);"
        )
    connection.close()
    return path


def test_registered_under_its_name() -> None:
    assert strategy_class("reflection") is ReflectionStrategy


def test_nl2sql_broken_query_is_fixed_in_round_two(tmp_path: Path) -> None:
    db = make_db(tmp_path / "hr.db")
    broken = "```sql\nSELECT nme FROM employees WHERE salary > 5500 ORDER BY name\n```"
    fixed = "Here is the fix:\n```sql\nSELECT name FROM employees WHERE salary > 5500 ORDER BY name;\n```"
    fake = CountingFake([broken, fixed])
    strategy = build(fake, check="sql", database=str(db), output_format="Reply with one SQLite query.")
    [answer] = strategy.answer([Question("Who earns more than 5500?")])

    assert answer.response == "SELECT name FROM employees WHERE salary > 5500 ORDER BY name"
    assert kinds(answer) == ["generate", "check", "revise", "check", "stop"]
    first_check, second_check = answer.trace.steps[1].detail, answer.trace.steps[3].detail
    assert first_check["round"] == 1 and first_check["ok"] is False
    assert "SQLite error: no such column: nme" in first_check["feedback"]
    assert second_check["round"] == 2 and second_check["ok"] is True
    assert second_check["rows"] == [["bob"], ["cy"]]
    assert answer.trace.steps[-1].detail == {"reason": "passed", "rounds": 2}
    # The revision saw its broken draft, the SQLite error and the schema.
    revise_conversation = fake.calls[1][0]
    assert revise_conversation[-2] == Message("assistant", broken)
    feedback = revise_conversation[-1].content
    assert "no such column: nme" in feedback
    assert "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, salary INTEGER)" in feedback
    assert fake.batches == [1, 1]
    assert answer.usage.model_calls == 2
    assert answer.usage.completion_tokens == count_tokens(broken) + count_tokens(fixed)
    assert answer.usage.prompt_tokens == sum(count_tokens(m.content) for conv, _ in fake.calls for m in conv)
    assert answer.latency_s > 0


def test_batches_drafts_and_revises_only_failing_answers() -> None:
    fake = CountingFake(["positive", "meh, hard to say", " NEGATIVE ", "neutral"])
    strategy = build(fake, check="labels", labels=["positive", "negative", "neutral"])
    questions = [Question("Great!"), Question("Hmm."), Question("Awful.")]
    answers = strategy.answer(questions)
    assert [a.response for a in answers] == ["positive", "neutral", "negative"]
    assert fake.batches == [3, 1]
    assert [a.usage.model_calls for a in answers] == [1, 2, 1]
    assert [a.question_id for a in answers] == [q.id for q in questions]
    assert "Answer with exactly one of these labels" in fake.calls[3][0][-1].content
    assert kinds(answers[1]) == ["generate", "check", "revise", "check", "stop"]


def test_llm_critique_loop_stops_at_max_rounds() -> None:
    fake = CountingFake([
        "draft 1", "The answer misses the unit.",
        "draft 2", "Still wrong: the unit is km.",
        "draft 3", "No, the number is off.",
    ])  # fmt: skip
    [answer] = build(fake, max_rounds=3).answer([Question("How far is it?")])
    assert answer.response == "draft 3"
    assert kinds(answer) == ["generate", "check", "revise", "check", "revise", "check", "stop"]
    assert [s.detail["ok"] for s in answer.trace.steps if s.kind == "check"] == [False, False, False]
    assert answer.trace.steps[-1].detail == {"reason": "max_rounds", "rounds": 3}
    assert answer.usage.model_calls == 6 and fake.pending == 0
    assert fake.batches == [1, 1, 1, 1, 1, 1]
    # The critique prompt shows the question and the draft; the revision gets the critique.
    critique_prompt = fake.calls[1][0][-1].content
    assert "How far is it?" in critique_prompt and "draft 1" in critique_prompt
    assert "The answer misses the unit." in fake.calls[2][0][-1].content
    assert fake.calls[2][0][-2] == Message("assistant", "draft 1")


def test_llm_critique_ok_stops_early() -> None:
    fake = FakeBackend(["Paris", "OK"])
    [answer] = build(fake, max_rounds=4).answer([Question("Capital of France?")])
    assert answer.response == "Paris"
    assert kinds(answer) == ["generate", "check", "stop"]
    assert answer.usage == Usage(prompt_tokens=answer.usage.prompt_tokens, completion_tokens=2, model_calls=2)


@pytest.mark.parametrize(
    ("critique", "ok"),
    [
        ("OK", True),
        ("ok.", True),
        ("**PASS**", True),
        ("Correct.", True),
        ("The answer is correct.", True),
        ("正确", True),
        ("没有问题。", True),
        ("", True),
        ("OK, but the unit is missing.", False),
        ("Okay however the date is wrong", False),
        ("Correctness: the second step has an error.", False),
        ("The answer is incorrect.", False),
        ("正确，但是缺少单位", False),
        ("1. The unit is missing.", False),
    ],
)
def test_parse_critique(critique: str, ok: bool) -> None:
    verdict = parse_critique(critique)
    assert verdict.ok is ok
    if critique:
        assert verdict.feedback == critique


def test_verifier_crash_ends_that_question_gracefully(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifiers.base, "VERIFIERS", verifiers.VERIFIERS.copy())

    @register_verifier("fragile")
    class Fragile:
        def __init__(self, options: VerifierOptions) -> None:
            pass

        def check(self, answer_text: str, question: Question) -> Verdict:
            if "boom" in question.tags:
                raise RuntimeError("verifier bug")
            return Verdict(answer_text == "good", "say good")

    fake = CountingFake(["bad", "bad", "good"])
    answers = build(fake, check="fragile", max_rounds=3).answer([Question("a", tags=["boom"]), Question("b")])
    crashed, fine = answers
    assert crashed.response == "bad"
    assert kinds(crashed) == ["generate", "check", "stop"]
    assert crashed.trace.steps[1].detail["error"] == "RuntimeError: verifier bug"
    assert crashed.trace.steps[1].detail["ok"] is None
    assert crashed.trace.steps[-1].detail == {"reason": "check_error", "rounds": 1}
    assert fine.response == "good" and fine.usage.model_calls == 2
    assert fake.batches == [2, 1]


def test_mcq_check_normalises_to_the_letter() -> None:
    fake = FakeBackend(["我觉得都可以", "答案是C"])
    question = Question("法国的首都是？", choices=["伦敦", "柏林", "巴黎", "罗马"])
    [answer] = build(fake, check="mcq").answer([question])
    assert answer.response == "C"
    assert "Answer with exactly one option letter (A, B, C, D)" in fake.calls[1][0][-1].content
    # normalize: false keeps the model's own words.
    fake = FakeBackend(["答案是C"])
    [raw] = build(fake, check="mcq", normalize=False).answer([question])
    assert raw.response == "答案是C"


def test_json_schema_check_uses_the_config_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fake = FakeBackend(['{"town": "Paris"}', 'Here: ```json\n{"city": "Paris"}\n```'])
    [answer] = build(fake, check="json_schema", json_schema=schema).answer([Question("Where?")])
    assert json.loads(answer.response) == {"city": "Paris"}
    assert "matching this JSON schema" in fake.calls[0][0][-1].content
    assert "'city' is a required property" in fake.calls[1][0][-1].content


def test_empty_batch_and_config_errors(tmp_path: Path) -> None:
    assert build(FakeBackend()).answer([]) == []
    with pytest.raises(ConfigError, match="max_rounds must be > 0, got 0"):
        parse_config(ReflectionStrategy, {"max_rounds": 0})
    with pytest.raises(ConfigError, match="unknown check 'vibes'"):
        parse_config(ReflectionStrategy, {"check": "vibes"})
    with pytest.raises(ConfigError, match="revise_template must contain"):
        parse_config(ReflectionStrategy, {"revise_template": "try again"})
    with pytest.raises(ConfigError, match="needs `database`"):
        build(FakeBackend(), check="sql")
    with pytest.raises(ConfigError, match="not found"):
        build(FakeBackend(), check="sql", database=str(tmp_path / "nope.db"))
    with pytest.raises(ConfigError, match="needs `labels`"):
        build(FakeBackend(), check="labels")


def test_cost_counts_the_critique_calls(tmp_path: Path) -> None:
    llm = build(FakeBackend(), max_rounds=3).cost()
    verifier = build(FakeBackend(), check="mcq", max_rounds=3).cost()
    assert llm.model_calls == 1 + 1 + 1.0 * 2 and verifier.model_calls == 1 + 1.0
    assert llm.prompt_tokens > verifier.prompt_tokens > 0
