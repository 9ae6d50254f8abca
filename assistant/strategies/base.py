"""The Strategy protocol, the strategy registry, and what every strategy shares.

A strategy turns questions into answers with a backend: plain prompting, few-shot,
self-reflection, RAG, an agent. Each declares a config dataclass that validates itself
and its expected cost per question, which is how the ladder orders the rungs.

Strategies are registered (``assistant.registry``) as ``"module:Class"`` strings so naming one
imports nothing heavy; a second registration under the same name is a bug and raises ``KeyError``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from assistant.errors import ConfigError
from assistant.registry import Registry
from assistant.types import Answer, Completion, GenParams, Message, Question, Trace, Usage

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.settings import Settings

# Empty: the model's own chat template supplies its default system prompt. Small models
# answer worse under a generic prompt of ours (smollm2-135m turned "capital of France?"
# into French nonsense under "You are a helpful, precise assistant...").
DEFAULT_SYSTEM_PROMPT = ""


@dataclass(frozen=True)
class StrategyCost:
    """Expected work per question: what the ladder sorts rungs by."""

    model_calls: float
    prompt_tokens: float
    completion_tokens: float

    @property
    def total_tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class StrategyConfig:
    """Settings every strategy shares. Strategy-specific configs subclass this."""

    strategy: str = "prompt"
    model: str | None = None  # a model reference; None = the `model` setting
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # How the question is put to the model; {question} is replaced.
    answer_template: str = "{question}"
    # An output-format instruction appended to the user message, e.g. "Answer with a single letter."
    output_format: str | None = None
    # A JSON schema the answer must follow; turned into an instruction (and checked by reflection).
    json_schema: dict[str, Any] | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if "{question}" not in self.answer_template:
            raise ConfigError(f"answer_template must contain {{question}}, got {self.answer_template!r}")
        if self.max_new_tokens <= 0:
            raise ConfigError(f"max_new_tokens must be > 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")

    def gen_params(self, **overrides: Any) -> GenParams:
        values: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stop": tuple(self.stop),
        }
        values.update(overrides)
        return GenParams(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@runtime_checkable
class Strategy(Protocol):
    name: ClassVar[str]
    config: StrategyConfig

    def answer(self, questions: Sequence[Question]) -> list[Answer]: ...

    def cost(self) -> StrategyCost: ...


# Strategy classes by name; the "module:Class" targets are imported only when built.
STRATEGIES: Registry[type[BaseStrategy]] = Registry("strategy")


def register_strategy(name: str, target: str | type[BaseStrategy]) -> None:
    """Register ``"module:Class"`` (or a class) under ``name``; refuse a second ``name``."""
    STRATEGIES.register(name, target)


def strategy_names() -> list[str]:
    return STRATEGIES.names()


def strategy_class(name: str) -> type[BaseStrategy]:
    """The class registered as ``name``; an unknown name is a ``ConfigError`` listing the known."""
    return STRATEGIES.get(name)


# Cheapest first: the ladder's default rung order.
register_strategy("prompt", "assistant.strategies.prompt:PromptStrategy")
register_strategy("fewshot", "assistant.strategies.prompt:FewShotStrategy")
register_strategy("reflection", "assistant.strategies.reflection:ReflectionStrategy")
register_strategy("rag", "assistant.strategies.rag:RagStrategy")
register_strategy("agent", "assistant.strategies.agent:AgentStrategy")


def parse_config(
    cls: type[BaseStrategy], data: dict[str, Any], origin: str = "strategy config"
) -> StrategyConfig:
    """Build ``cls.Config`` from a mapping, naming unknown or bad keys."""
    config_cls = cls.Config
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key(s) for strategy {cls.name!r}: {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(known))}",
        )
    try:
        return config_cls(**{**data, "strategy": cls.name})
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{origin}: {exc}") from None


class BaseStrategy:
    """Shared machinery: prompt building, batched generation, answers with usage."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    # True when an answer's response is exactly the text of one generate call, so the text
    # may be streamed as the model produces it (``assistant.backends.streaming``). A strategy
    # that drafts, revises or calls tools shows only its final answer: False.
    streams: ClassVar[bool] = False

    def __init__(self, config: StrategyConfig, backend: LLMBackend, settings: Settings) -> None:
        self.config = config
        self.backend = backend
        self.settings = settings

    # ---- prompts -------------------------------------------------------------------
    def format_instruction(self) -> str:
        parts = []
        if self.config.output_format:
            parts.append(self.config.output_format)
        if self.config.json_schema is not None:
            import json

            schema = json.dumps(self.config.json_schema, ensure_ascii=False)
            parts.append(f"Reply with one JSON object only, matching this JSON schema: {schema}")
        return "\n".join(parts)

    def user_message(self, question: Question) -> str:
        text = self.config.answer_template.replace("{question}", question.prompt or question.user_input)
        if question.choices and not question.prompt:
            letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            text += "\n" + "\n".join(f"{letters[i]}. {c}" for i, c in enumerate(question.choices))
        instruction = self.format_instruction()
        return f"{text}\n\n{instruction}" if instruction else text

    def system_messages(self) -> list[Message]:
        return [Message("system", self.config.system_prompt)] if self.config.system_prompt else []

    def conversation(self, question: Question) -> list[Message]:
        return [*self.system_messages(), Message("user", self.user_message(question))]

    # ---- answering -----------------------------------------------------------------
    def answer(self, questions: Sequence[Question]) -> list[Answer]:
        """One batched generate call over the questions; subclasses change the messages."""
        conversations = [self.conversation(q) for q in questions]
        completions = self.backend.generate(conversations, self.config.gen_params())
        return [
            self.make_answer(q, c, trace=self.trace_for(q, conv, c))
            for q, conv, c in zip(questions, conversations, completions, strict=True)
        ]

    def trace_for(self, question: Question, conversation: list[Message], completion: Completion) -> Trace:
        trace = Trace()
        trace.add("generate", messages=len(conversation), finish_reason=completion.finish_reason,
                  completion_tokens=completion.usage.completion_tokens)  # fmt: skip
        return trace

    def make_answer(
        self,
        question: Question,
        completion: Completion,
        *,
        trace: Trace | None = None,
        usage: Usage | None = None,
        latency_s: float | None = None,
        retrieved_contexts: list[str] | None = None,
        response: str | None = None,
    ) -> Answer:
        return Answer(
            user_input=question.user_input,
            response=completion.text if response is None else response,
            usage=usage or completion.usage,
            latency_s=completion.latency_s if latency_s is None else latency_s,
            model_id=completion.model_id,
            retrieved_contexts=retrieved_contexts or [],
            trace=trace or Trace(),
            question_id=question.id,
            prompt_truncated=completion.prompt_truncated,
        )

    # ---- cost ----------------------------------------------------------------------
    def base_prompt_tokens(self) -> float:
        """A rough prompt size before the question: system prompt and template, ~4 chars a token."""
        return (
            len(self.config.system_prompt) + len(self.config.answer_template) + len(self.format_instruction())
        ) / 4 + 40

    def cost(self) -> StrategyCost:
        return StrategyCost(model_calls=1, prompt_tokens=self.base_prompt_tokens(),
                            completion_tokens=self.config.max_new_tokens / 2)  # fmt: skip


@dataclass
class Episode:
    """One question's run through a strategy that makes several model calls.

    Reflection and the agent both keep this bookkeeping: usage summed over every call,
    the model that answered, the trace, and the answer once the run stops.
    """

    question: Question
    trace: Trace = field(default_factory=Trace)
    usage: Usage = field(default_factory=Usage)
    retrieved_contexts: list[str] = field(default_factory=list)
    response: str | None = None
    model_id: str = ""
    prompt_truncated: bool = False
    latency_s: float = 0.0

    @property
    def done(self) -> bool:
        return self.response is not None

    def record(self, completion: Completion) -> None:
        """Count one model call."""
        self.usage = self.usage + completion.usage
        self.model_id = completion.model_id
        self.prompt_truncated = self.prompt_truncated or completion.prompt_truncated

    def finish(self, response: str, reason: str, started: float, **detail: Any) -> None:
        """Stop the run with ``response``; the trace's last step says why."""
        self.response = response
        self.latency_s = time.perf_counter() - started
        self.trace.add("stop", reason=reason, **detail)

    def to_answer(self, fallback_model_id: str, fallback_response: str = "") -> Answer:
        return Answer(
            user_input=self.question.user_input,
            response=self.response if self.response is not None else fallback_response,
            usage=self.usage,
            latency_s=self.latency_s,
            model_id=self.model_id or fallback_model_id,
            retrieved_contexts=self.retrieved_contexts,
            trace=self.trace,
            question_id=self.question.id,
            prompt_truncated=self.prompt_truncated,
        )


class Timer:
    """Wall time of a block, for answers built from several model calls."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
