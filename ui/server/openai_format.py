"""The OpenAI chat-completions wire format: requests in, ``Question`` and strategy overrides
out; ``Answer`` in, completion objects and stream chunks out. No I/O here.

Strategies answer one question, so a conversation becomes one ``Question``: the last user
message is the question (what RAG retrieves with), and earlier turns, when there are any, go
into ``Question.prompt`` as a transcript the model sees. System messages become the
strategy's ``system_prompt`` (RAG keeps its own rules after it).

Extra fields beyond OpenAI's: ``citations`` (the sources an answer cites: number, source,
page, chunk, text, score) and ``ladder`` (strategy, the backend's model id, model calls,
latency, retrieved contexts) on the completion and on the last stream chunk.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import ConfigError
from assistant.types import Answer, Question


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=300)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1
    user: str | None = Field(default=None, max_length=200)
    # Ladder's: groups feedback of one chat (falls back to `user`)
    session_id: str | None = Field(default=None, max_length=200)
    tools: list[dict[str, Any]] | None = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: str | int | bool
    completion_id: str | None = Field(default=None, max_length=100)
    correction: str | None = None
    comment: str | None = None
    session_id: str | None = Field(default=None, max_length=200)
    # Needed only when the server no longer remembers completion_id (e.g. after a restart).
    question: str | None = None
    answer: str | None = None
    model: str | None = Field(default=None, max_length=300)  # a name the server offers


def _text(message: ChatMessage) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.get("type") != "text":
            raise ConfigError(f"unsupported content part {part.get('type')!r}: only text is accepted")
        parts.append(str(part.get("text", "")))
    return "".join(parts)


def to_question(request: ChatRequest) -> tuple[Question, dict[str, Any]]:
    """The question and the strategy overrides (flags) a request stands for."""
    if request.n != 1:
        raise ConfigError(f"n={request.n}: one choice per request")
    if request.tools:
        raise ConfigError("tools are not supported: pick the agent strategy (model 'agent') instead")
    system = [_text(m) for m in request.messages if m.role in ("system", "developer")]
    turns = [(m.role, _text(m)) for m in request.messages if m.role in ("user", "assistant")]
    unknown = sorted({m.role for m in request.messages} - {"system", "developer", "user", "assistant"})
    if unknown:
        raise ConfigError(f"unsupported message role(s): {', '.join(unknown)}")
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise ConfigError("the last message must be the user's, with text")
    question = Question(turns[-1][1])
    if len(turns) > 1:
        transcript = "\n".join(f"{role.capitalize()}: {text}" for role, text in turns[:-1])
        question.prompt = (
            f"Conversation so far:\n{transcript}\n\nReply to the user's last message:\n{turns[-1][1]}"
        )
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    overrides: dict[str, Any] = {
        "max_new_tokens": request.max_completion_tokens or request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "stop": list(stop) if stop else None,
        "system_prompt": "\n\n".join(system) if system else None,
    }
    return question, {key: value for key, value in overrides.items() if value is not None}


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def finish_reason(answer: Answer, max_new_tokens: int | None) -> str:
    if max_new_tokens is not None and answer.usage.completion_tokens >= max_new_tokens:
        return "length"
    return "stop"


def public_model_id(model_id: str) -> str:
    """A backend's model id without server paths or an upstream's address: ``qwen+tickets``
    for ``/models/qwen+/srv/adapters/tickets``, ``openai:gpt-4o`` for ``openai:gpt-4o@<url>``."""
    if model_id.startswith("openai:"):
        return model_id.partition("@")[0]
    parts = []
    for part in model_id.split("+"):
        head, _slash, tail = part.rstrip("/\\").replace("\\", "/").rpartition("/")
        parts.append(f"fake:{tail}" if head.startswith("fake:") else tail or head)
    return "+".join(parts)


def extras(answer: Answer, strategy: str) -> dict[str, Any]:
    return {
        "citations": [asdict(c) for c in answer.citations],
        "ladder": {
            "strategy": strategy,
            "backend_model": public_model_id(answer.model_id),
            "model_calls": answer.usage.model_calls,
            "latency_s": round(answer.latency_s, 4),
            "retrieved_contexts": list(answer.retrieved_contexts),
            "prompt_truncated": answer.prompt_truncated,
        },
    }


def usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
        "total_tokens": answer.usage.total_tokens,
    }


def completion(cid: str, model: str, answer: Answer, strategy: str, reason: str) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.response},
                "finish_reason": reason,
                "logprobs": None,
            }
        ],
        "usage": usage(answer),
        **extras(answer, strategy),
    }


def chunk(cid: str, model: str, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
    }


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
