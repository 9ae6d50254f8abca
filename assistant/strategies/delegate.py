"""``delegate``: stacking, the base model plans and composes, the adapter answers its domain.

An agent (``strategies.agent``) whose every turn is the base model alone, with one more tool,
``domain_expert``: the same model with its fine-tuned LoRA adapter, asked the domain
sub-question in the form it was trained on (``domain_template``). One model in memory
(``--model <base>+<adapter>``): the agent's turns run with the adapter off and the tool's call
with it on (``backends.adapter_rows``).

So a question that needs both, say a support ticket whose queue only the adapter knows and a
refund the base can work out from a policy stated in the question, gets the queue from the
adapter and the arithmetic from the base (and its calculator). The adapter alone answers the
queue and nothing else; the base alone does not know the queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from assistant.backends.adapter_rows import adapter_per_row, mixes_adapters
from assistant.backends.json_schema import respond_with_schema
from assistant.errors import ConfigError
from assistant.strategies.agent import AgentConfig, AgentStrategy, _Episode, _State
from assistant.strategies.base import Episode, StrategyConfig
from assistant.strategies.tools import ToolContext, ToolError, ToolResult, register_tool, run_tool
from assistant.strategies.verifiers import find_json
from assistant.types import Answer, Completion, GenParams, Message, Question

DOMAIN_TOOL = "domain_expert"
DELEGATE_EXAMPLE = "\n".join(
    [
        "",
        "",
        "Example:",
        'Question: Ticket: "The blender I bought leaks water." It cost 60 yuan. Policy: a leaking item'
        " is refunded at half its price. Reply as: <queue> <refund>",
        '{"thought": "Only the company\'s domain model knows the queue of this ticket.", "action": '
        '"domain_expert", "action_input": {"question": "The blender I bought leaks water."}}',
        "Observation: QG-X1",
        '{"thought": "Half of 60 is the refund.", "action": "calculator", "action_input": '
        '{"expression": "60 * 0.5"}}',
        "Observation: 30",
        '{"thought": "The queue is QG-X1 and the refund 30.", "final_answer": "QG-X1 30"}',
    ]
)


# ``mode: plan``: one planning call, the tools, one composing call (no free-form loop to get lost
# in: a 0.5B model that loops in the ReAct protocol still fills two JSON fields).
PLAN_INSTRUCTIONS = """Before anyone answers the question below, split it into two parts.
- domain_question: what only the company's own model can answer (its internal codes and conventions,
  e.g. the queue of a support ticket). Copy the text it needs word for word, e.g. the ticket's text.
- expression: an arithmetic expression for what can be calculated from the numbers the question
  states (numbers, + - * / and parentheses, no "=" and no result), or "" when nothing is to be calculated.
Reply with one JSON object: {{"domain_question": "...", "expression": "..."}}

Example: for 'Ticket: 「The lamp I ordered flickers.」 It cost 90 yuan, bought 40 days ago. Policy: a full
refund within 14 days, 70% after that. Reply as: <queue> <refund>' the reply is
{{"domain_question": "The lamp I ordered flickers.", "expression": "90 * 0.7"}}

Question:
{question}"""
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"domain_question": {"type": "string"}, "expression": {"type": "string"}},
    "required": ["domain_question", "expression"],
}
COMPOSE_INSTRUCTIONS = """{question}

Facts you can rely on:
- The company's own model, asked about "{domain_question}", answered: {domain_answer}
- The calculation {expression} gives {value}

Answer the question with these facts. Reply with one JSON object: {{"answer": "..."}}"""
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


@dataclass
class DelegateContext(ToolContext):
    """The agent's tool context plus the domain model: ``ask_domain(sub_question) -> Completion``."""

    ask_domain: Callable[[str], Completion] | None = None
    # The domain model's completions since the last tool call (their tokens count for the answer).
    domain_calls: list[Completion] = field(default_factory=list)


@register_tool(
    DOMAIN_TOOL,
    "Ask the company's own fine-tuned model a domain sub-question (it knows the company's internal "
    "codes and conventions, e.g. the queue of a ticket given the ticket's text); it cannot calculate.",
    args={"question": "the domain sub-question, e.g. the ticket's text"},
    requires=("domain_template",),
)
def domain_expert(args: dict[str, Any], context: ToolContext) -> ToolResult:
    if not isinstance(context, DelegateContext) or context.ask_domain is None:
        raise ToolError(f"{DOMAIN_TOOL} is only available under the delegate strategy")
    question = str(args["question"]).strip()
    if not question:
        raise ToolError(f"{DOMAIN_TOOL} needs a non-empty question")
    completion = context.ask_domain(question)
    context.domain_calls.append(completion)
    return ToolResult(completion.text or "(no answer)", data=completion.text)


@dataclass
class DelegateConfig(AgentConfig):
    strategy: str = "delegate"
    # How the sub-question is put to the adapter: the form its training data used.
    domain_template: str = "{question}"
    domain_max_new_tokens: int = 32
    domain_stop: list[str] = field(default_factory=lambda: ["\n"])
    # A worked example in the system prompt (small models follow one); "" for none.
    example: str = DELEGATE_EXAMPLE
    # agent: the ReAct loop of the agent strategy, the base choosing tools turn by turn;
    # plan: the base writes a plan (the domain sub-question and a calculation) as JSON, the tools
    # run, and the base composes the answer from their results (three calls, each batched).
    mode: str = "agent"

    def __post_init__(self) -> None:
        if self.mode not in ("agent", "plan"):
            raise ConfigError(f"mode must be agent or plan, got {self.mode!r}")
        if "{question}" not in self.domain_template:
            raise ConfigError(f"domain_template must contain {{question}}, got {self.domain_template!r}")
        if self.domain_max_new_tokens <= 0:
            raise ConfigError(f"domain_max_new_tokens must be > 0, got {self.domain_max_new_tokens}")
        super().__post_init__()

    def tool_names(self) -> list[str]:
        names = super().tool_names()
        if self.tools is None:  # the default set: the domain tool first
            names = [DOMAIN_TOOL, *names]
        return names


def completion_question(tool_input: Any) -> str:
    """The sub-question of a domain_expert call, as the model gave it."""
    if isinstance(tool_input, dict):
        return str(tool_input.get("question", json.dumps(tool_input, ensure_ascii=False)))
    return str(tool_input)


class DelegateStrategy(AgentStrategy):
    name: ClassVar[str] = "delegate"
    Config: ClassVar[type[StrategyConfig]] = DelegateConfig

    def __init__(self, config: StrategyConfig, backend: Any, settings: Any) -> None:
        if not isinstance(config, DelegateConfig):
            raise ConfigError(f"delegate needs a DelegateConfig, got {type(config).__name__}")
        super().__init__(config, backend, settings)
        if not mixes_adapters(backend):
            raise ConfigError(
                f"delegate needs a local model with a LoRA adapter, got {backend.model_id!r}",
                hint="use --model <base>+<adapter>, e.g. qwen2.5-coder-0.5b+demo-ticket-routing-ladder",
            )
        self.delegate = config
        self.context = DelegateContext(**{**vars(self.context), "ask_domain": self.ask_domain})

    def ask_domain(self, question: str) -> Completion:
        """The adapter's answer to a domain sub-question (one row, adapter on)."""
        return self.ask_domain_batch([question])[0]

    def ask_domain_batch(self, questions: Sequence[str]) -> list[Completion]:
        """The adapter's answers to domain sub-questions: one batch, the adapter on every row."""
        template = self.delegate.domain_template
        prompts = [[Message("user", template.replace("{question}", q))] for q in questions]
        params = GenParams(
            max_new_tokens=self.delegate.domain_max_new_tokens, stop=tuple(self.delegate.domain_stop)
        )
        with adapter_per_row([True] * len(prompts)):
            return self.backend.generate(prompts, params)

    # ---- mode: plan ------------------------------------------------------------------------
    def answer(self, questions: Sequence[Question]) -> list[Answer]:
        if self.delegate.mode == "agent" or not questions:
            return super().answer(questions)
        started = time.perf_counter()
        episodes = [Episode(question=q) for q in questions]
        plans = self._plan(episodes)
        self._execute(episodes, plans)
        self._compose(episodes, plans, started)
        return [e.to_answer(self.backend.model_id) for e in episodes]

    def _base_json(self, texts: list[str], schema: dict[str, Any]) -> list[Completion]:
        """The base alone, its replies constrained to ``schema`` where the backend can (hf_local)."""
        conversations = [[*self.system_messages(), Message("user", t)] for t in texts]
        params = self.config.gen_params(stop=())
        with adapter_per_row([False] * len(texts)), respond_with_schema(schema):
            return self.backend.generate(conversations, params)

    def _plan(self, episodes: list[Episode]) -> list[dict[str, str]]:
        texts = [PLAN_INSTRUCTIONS.format(question=self.user_message(e.question)) for e in episodes]
        plans = []
        for episode, completion in zip(episodes, self._base_json(texts, PLAN_SCHEMA), strict=True):
            episode.record(completion)
            found = find_json(completion.text, lambda v: isinstance(v, dict))
            plan = {
                key: str((found or {}).get(key) or "").strip() for key in ("domain_question", "expression")
            }
            episode.trace.add("plan", reply=completion.text, parsed=found is not None, **plan)
            plans.append(plan)
        return plans

    def _execute(self, episodes: list[Episode], plans: list[dict[str, str]]) -> None:
        asked = [i for i, plan in enumerate(plans) if plan["domain_question"]]
        answers = self.ask_domain_batch([plans[i]["domain_question"] for i in asked]) if asked else []
        for index, completion in zip(asked, answers, strict=True):
            episode, plan = episodes[index], plans[index]
            episode.usage = episode.usage + completion.usage
            plan["domain_answer"] = completion.text or "(no answer)"
            episode.trace.add("domain", question=plan["domain_question"], answer=completion.text,
                              completion_tokens=completion.usage.completion_tokens)  # fmt: skip
        for episode, plan in zip(episodes, plans, strict=True):
            plan.setdefault("domain_answer", "(not asked)")
            plan["value"] = "(nothing calculated)"
            # Small models write the result too ("440 * 0.8 = 352"): the left side is the expression.
            plan["expression"] = plan["expression"].split("=")[0].strip()
            if plan["expression"]:
                try:
                    result = run_tool("calculator", {"expression": plan["expression"]}, self.context)
                    plan["value"] = result.observation
                except ToolError as exc:
                    plan["value"] = f"(error: {exc})"
            episode.trace.add("calculator", expression=plan["expression"], value=plan["value"])

    def _compose(self, episodes: list[Episode], plans: list[dict[str, str]], started: float) -> None:
        texts = [
            COMPOSE_INSTRUCTIONS.format(question=self.user_message(e.question), **plan)
            for e, plan in zip(episodes, plans, strict=True)
        ]
        for episode, completion in zip(episodes, self._base_json(texts, ANSWER_SCHEMA), strict=True):
            episode.record(completion)
            found = find_json(completion.text, lambda v: isinstance(v, dict) and "answer" in v)
            response = str(found["answer"]).strip() if found is not None else completion.text.strip()
            episode.finish(response, "composed", started, reply=completion.text)

    def instructions(self) -> str:
        text = super().instructions()
        return text + (self.delegate.example if DOMAIN_TOOL in self.tools else "")

    def _model(self, state: _State) -> dict[str, Any]:
        # The agent's own turns: the base alone.
        active = sum(1 for e in state["episodes"] if not e.done)
        with adapter_per_row([False] * active):
            return super()._model(state)

    def _call_tool(self, episode: _Episode, tool: str, tool_input: Any) -> tuple[str, bool]:
        assert isinstance(self.context, DelegateContext)
        self.context.domain_calls.clear()
        observation, failed = super()._call_tool(episode, tool, tool_input)
        for completion in self.context.domain_calls:
            episode.usage = episode.usage + completion.usage
            question = completion_question(tool_input)
            episode.trace.add("domain", step=episode.steps, question=question, answer=completion.text,
                              completion_tokens=completion.usage.completion_tokens)  # fmt: skip
        self.context.domain_calls.clear()
        return observation, failed
