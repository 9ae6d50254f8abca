"""``delegate``: the base plans and composes, the ``domain_expert`` tool asks the adapter. A
scripted fake that mixes adapters answers adapter rows from one script and base rows from another,
and records which rows asked for what."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from assistant.backends.adapter_rows import current_adapter_rows
from assistant.backends.fake import FakeBackend
from assistant.backends.json_schema import current_schema
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.strategies.agent import AgentStrategy
from assistant.strategies.base import parse_config
from assistant.strategies.delegate import DOMAIN_TOOL, DelegateStrategy
from assistant.types import Completion, GenParams, Message, Question

TEMPLATE = "Route this ticket to its queue; reply with the code only.\n\n{question}"


class MixingFake(FakeBackend):
    """Base rows get the planner's script; adapter rows get ``domain``'s reply to the prompt."""

    mixes_adapters = True

    def __init__(self, planner: Sequence[str], domain: dict[str, str]) -> None:
        super().__init__(planner)
        self.domain = domain
        self.rows: list[tuple[bool, ...]] = []
        self.domain_prompts: list[str] = []
        self.domain_schemas: list[Any] = []

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        rows = current_adapter_rows(len(batch))
        assert rows is not None, "every call says which rows use the adapter"
        self.rows.append(rows)
        if not any(rows):
            return super().generate(batch, params)
        assert all(rows) and len(batch) == 1
        prompt = batch[0][-1].content
        self.domain_prompts.append(prompt)
        self.domain_schemas.append(current_schema())
        ticket = prompt.split("\n\n", 1)[1]
        return FakeBackend(default=self.domain.get(ticket, "QG-??")).generate(batch, params)


def act(tool: str, **args: Any) -> str:
    return json.dumps({"thought": f"use {tool}", "action": tool, "action_input": args})


def final(answer: str) -> str:
    return json.dumps({"thought": "done", "final_answer": answer})


def build(backend: FakeBackend, **config: Any) -> DelegateStrategy:
    data = {"domain_template": TEMPLATE, **config}
    strategy = DelegateStrategy(parse_config(DelegateStrategy, data), backend, Settings())
    return strategy


QUESTION = (
    'Ticket: "My kettle leaks." It cost 80 yuan, bought 10 days ago. Policy: within 7 days a full '
    "refund, 8-30 days 75 %. Reply as: <queue> <refund>"
)


def test_the_base_plans_the_adapter_answers_the_domain_part_and_the_base_composes() -> None:
    backend = MixingFake(
        [act(DOMAIN_TOOL, question="My kettle leaks."), act("calculator", expression="80 * 0.75"),
         final("QG-R7 60")],
        {"My kettle leaks.": "QG-R7"},
    )  # fmt: skip
    strategy = build(backend)
    assert strategy.tools == [DOMAIN_TOOL, "calculator"]
    (answer,) = strategy.answer([Question(QUESTION)])
    assert answer.response == "QG-R7 60"
    # Planner turns on the base, the tool's call on the adapter, in the trained prompt form.
    assert backend.rows == [(False,), (True,), (False,), (False,)]
    assert backend.domain_prompts == [TEMPLATE.replace("{question}", "My kettle leaks.")]
    observations = [s.detail for s in answer.trace.steps if s.kind == "observation"]
    assert [o["text"] for o in observations] == ["QG-R7", "60"]
    (domain,) = [s.detail for s in answer.trace.steps if s.kind == "domain"]
    assert domain["answer"] == "QG-R7" and domain["step"] == 1
    # The domain call's tokens count: 4 calls in all (three planner turns and the tool's).
    assert answer.usage.model_calls == 4
    system = backend.calls[0][0][0].content
    assert DOMAIN_TOOL in system and "QG-X1 30" in system, "the tool and the worked example are offered"


def test_the_planner_sees_what_the_adapter_said_not_what_it_guessed() -> None:
    # A wrong sub-question gets the domain model's answer to it; the planner is not trusted.
    backend = MixingFake(
        [act(DOMAIN_TOOL, question="unknown ticket"), final("QG-?? 0")], {"My kettle leaks.": "QG-R7"}
    )
    (answer,) = build(backend).answer([Question(QUESTION)])
    assert [s.detail["text"] for s in answer.trace.steps if s.kind == "observation"] == ["QG-??"]
    empty = MixingFake([act(DOMAIN_TOOL, question="  "), final("x")], {})
    (answer,) = build(empty).answer([Question(QUESTION)])
    (observation,) = [s.detail for s in answer.trace.steps if s.kind == "observation"]
    assert observation["error"] and "non-empty" in observation["text"]
    assert empty.domain_prompts == [], "no model call for an empty sub-question"


def test_a_batch_runs_the_planner_turns_together_on_the_base() -> None:
    backend = MixingFake(
        [act(DOMAIN_TOOL, question="A"), act(DOMAIN_TOOL, question="B"), final("QG-1"), final("QG-2")],
        {"A": "QG-1", "B": "QG-2"},
    )
    answers = build(backend).answer([Question("ticket A"), Question("ticket B")])
    assert [a.response for a in answers] == ["QG-1", "QG-2"]
    assert backend.rows == [(False, False), (True,), (True,), (False, False)]


def test_delegate_needs_a_mixing_backend_and_the_tool_needs_delegate() -> None:
    with pytest.raises(ConfigError, match="needs a local model with a LoRA adapter"):
        build(FakeBackend())
    with pytest.raises(ConfigError, match="domain_template"):
        parse_config(DelegateStrategy, {"domain_template": "no placeholder"})
    with pytest.raises(ConfigError, match="the domain_expert tool needs `domain_template`"):
        parse_config(AgentStrategy, {"tools": [DOMAIN_TOOL]})


# ---- mode: plan -------------------------------------------------------------------------------
def plan(domain_question: str, expression: str) -> str:
    return json.dumps({"domain_question": domain_question, "expression": expression})


def test_plan_mode_plans_asks_the_adapter_calculates_and_composes_in_three_batched_calls() -> None:
    from assistant.strategies.delegate import ANSWER_SCHEMA, PLAN_SCHEMA

    backend = MixingFake(
        [plan("My kettle leaks.", "80 * 0.75 = 60"), plan("", ""),
         json.dumps({"answer": "QG-R7 60"}), json.dumps({"answer": "no idea"})],
        {"My kettle leaks.": "QG-R7"},
    )  # fmt: skip
    answers = build(backend, mode="plan").answer([Question(QUESTION), Question("What is 2 + 2?")])
    assert [a.response for a in answers] == ["QG-R7 60", "no idea"]
    # Plan (base, both), the domain question (adapter, only the one that has one), compose (base).
    assert backend.rows == [(False, False), (True,), (False, False)]
    assert backend.schemas == [PLAN_SCHEMA, PLAN_SCHEMA, ANSWER_SCHEMA, ANSWER_SCHEMA]
    assert backend.domain_schemas == [None], "the adapter answers in its own trained form"
    assert backend.domain_prompts == [TEMPLATE.replace("{question}", "My kettle leaks.")]
    first = {s.kind: s.detail for s in answers[0].trace.steps}
    assert first["plan"]["domain_question"] == "My kettle leaks." and first["plan"]["parsed"]
    assert first["domain"]["answer"] == "QG-R7"
    # "80 * 0.75 = 60": the model's own result is dropped and the calculator computes.
    assert first["calculator"] == {"expression": "80 * 0.75", "value": "60"}
    compose = backend.calls[-2][0][-1].content
    assert 'asked about "My kettle leaks.", answered: QG-R7' in compose and "80 * 0.75 gives 60" in compose
    second = {s.kind: s.detail for s in answers[1].trace.steps}
    assert "domain" not in second and second["calculator"]["value"] == "(nothing calculated)"
    assert "(not asked)" in backend.calls[-1][0][-1].content
    assert answers[0].usage.model_calls == 3 and answers[1].usage.model_calls == 2


def test_plan_mode_survives_a_plan_that_is_not_json_and_a_bad_expression() -> None:
    backend = MixingFake(["I think the queue is", "not json either"], {})
    backend2 = MixingFake([plan("ticket", "eighty times 0.8"), json.dumps({"answer": "QG-?? 0"})], {})
    (answer,) = build(backend, mode="plan").answer([Question(QUESTION)])
    steps = {s.kind: s.detail for s in answer.trace.steps}
    assert steps["plan"]["parsed"] is False and answer.response == "not json either"
    (answer,) = build(backend2, mode="plan").answer([Question(QUESTION)])
    steps = {s.kind: s.detail for s in answer.trace.steps}
    assert steps["calculator"]["value"].startswith("(error: ") and answer.response == "QG-?? 0"
    with pytest.raises(ConfigError, match="mode must be agent or plan"):
        parse_config(DelegateStrategy, {"domain_template": TEMPLATE, "mode": "loop"})
