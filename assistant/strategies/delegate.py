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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from assistant.backends.adapter_rows import adapter_per_row, mixes_adapters
from assistant.errors import ConfigError
from assistant.strategies.agent import AgentConfig, AgentStrategy, _Episode, _State
from assistant.strategies.base import StrategyConfig
from assistant.strategies.tools import ToolContext, ToolError, ToolResult, register_tool
from assistant.types import Completion, GenParams, Message

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

    def __post_init__(self) -> None:
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
        prompt = self.delegate.domain_template.replace("{question}", question)
        params = GenParams(
            max_new_tokens=self.delegate.domain_max_new_tokens, stop=tuple(self.delegate.domain_stop)
        )
        with adapter_per_row([True]):
            (completion,) = self.backend.generate([[Message("user", prompt)]], params)
        return completion

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
            episode.trace.add("domain", step=episode.steps, question=str(tool_input), answer=completion.text,
                              completion_tokens=completion.usage.completion_tokens)  # fmt: skip
        self.context.domain_calls.clear()
        return observation, failed
