"""The data that flows between backends, strategies and the evaluator.

Field names follow ragas (``user_input``, ``response``, ``retrieved_contexts``,
``reference``, ``reference_contexts``) so that an ``Answer`` maps one to one onto a ragas
``SingleTurnSample`` and the evaluator never reshapes data.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


@dataclass
class ToolCall:
    """A structured tool call, as LangGraph expects it on an ``AIMessage``."""

    name: str
    args: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass
class Message:
    role: str
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [asdict(call) for call in self.tool_calls]
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        if self.name:
            out["name"] = self.name
        return out


def user(text: str) -> list[Message]:
    """A one-message conversation: the common case for ``generate``."""
    return [Message("user", text)]


@dataclass
class GenParams:
    """Generation settings. Greedy by default: evaluation must be reproducible."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # JSON-schema tool specs (OpenAI "function" format) offered to the model.
    tools: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be > 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        self.stop = tuple(self.stop)
        self.tools = tuple(self.tools)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def cache_key(self) -> dict[str, Any]:
        """The fields that change the output, for the evaluation cache."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": list(self.stop),
            "tools": [tool.get("function", tool).get("name") for tool in self.tools],
        }


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.model_calls + other.model_calls,
        )


FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass
class Completion:
    """One backend reply to one conversation."""

    text: str
    usage: Usage
    latency_s: float
    model_id: str
    finish_reason: str = "stop"
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Set when the prompt had to be cut to fit the context window.
    prompt_truncated: bool = False


@dataclass
class Question:
    user_input: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    reference: str | None = None
    reference_contexts: list[str] | None = None
    choices: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    # A ready prompt (an evaluation suite's template, k-shot exemplars and listed options).
    # When set, strategies put this text to the model instead of ``user_input`` plus the
    # options, and still retrieve, verify and report with the bare ``user_input``/``choices``.
    prompt: str | None = None


@dataclass
class TraceStep:
    kind: str  # "generate", "retrieve", "check", "revise", "tool", ...
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    steps: list[TraceStep] = field(default_factory=list)

    def add(self, kind: str, **detail: Any) -> None:
        self.steps.append(TraceStep(kind, detail))


@dataclass
class Citation:
    """A numbered source the answer cites: ``[n]`` in the text maps to this chunk."""

    number: int
    source: str
    page: int | None
    chunk: int
    text: str
    score: float = 0.0


@dataclass
class Answer:
    user_input: str
    response: str
    usage: Usage
    latency_s: float
    model_id: str
    retrieved_contexts: list[str] = field(default_factory=list)
    trace: Trace = field(default_factory=Trace)
    question_id: str | None = None
    prompt_truncated: bool = False
    citations: list[Citation] = field(default_factory=list)

    def to_ragas_sample(
        self, reference: str | None = None, reference_contexts: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The ``SingleTurnSample`` fields, with the reference data from the suite."""
        sample: dict[str, Any] = {
            "user_input": self.user_input,
            "response": self.response,
            "retrieved_contexts": list(self.retrieved_contexts),
        }
        if reference is not None:
            sample["reference"] = reference
        if reference_contexts is not None:
            sample["reference_contexts"] = list(reference_contexts)
        return sample
