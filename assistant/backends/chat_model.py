"""A LangChain chat model over any ``LLMBackend``.

LangGraph agents and ragas judges talk to LangChain's ``BaseChatModel``; this adapter lets
them drive any Ladder backend (local, endpoint or fake) through the same ``generate``
call the rest of Ladder uses, so usage and latency are counted the same way. A call may pass
``json_schema=<schema>`` (``ainvoke(messages, json_schema=...)``) to ask for a reply
constrained to that JSON schema where the backend can give one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from assistant.backends.json_schema import respond_with_schema
from assistant.types import GenParams, Message, ToolCall


def to_ladder_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    out: list[Message] = []
    for message in messages:
        content = message.content if isinstance(message.content, str) else _flatten(message.content)
        if isinstance(message, SystemMessage):
            out.append(Message("system", content))
        elif isinstance(message, HumanMessage):
            out.append(Message("user", content))
        elif isinstance(message, AIMessage):
            calls = [ToolCall(c["name"], dict(c["args"]), c.get("id") or "") for c in message.tool_calls]
            out.append(Message("assistant", content, tool_calls=calls))
        elif isinstance(message, ToolMessage):
            out.append(Message("tool", content, tool_call_id=message.tool_call_id, name=message.name))
        else:
            out.append(Message("user", content))
    return out


def _flatten(content: list[Any]) -> str:
    parts = [p if isinstance(p, str) else str(p.get("text", "")) for p in content]
    return "".join(parts)


class LadderChatModel(BaseChatModel):
    """``BaseChatModel`` that forwards to a Ladder backend."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any
    params: GenParams = GenParams()

    @property
    def _llm_type(self) -> str:
        return "ladder"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.backend.model_id, **self.params.cache_key()}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params = self.params
        overrides: dict[str, Any] = {}
        if stop:
            overrides["stop"] = tuple(params.stop) + tuple(stop)
        for key in ("max_new_tokens", "temperature", "top_p", "seed"):
            if key in kwargs:
                overrides[key] = kwargs[key]
        if "max_tokens" in kwargs:
            overrides["max_new_tokens"] = kwargs["max_tokens"]
        if overrides:
            params = GenParams(**{**params.__dict__, **overrides})
        n = int(kwargs.get("n", 1) or 1)
        conversation = to_ladder_messages(messages)
        # ``json_schema=`` asks for a reply constrained to that JSON schema where the backend
        # can (``assistant.backends.json_schema``); other backends answer as usual.
        with respond_with_schema(kwargs.get("json_schema")):
            completions = self.backend.generate([conversation] * n, params)
        generations = []
        for completion in completions:
            message = AIMessage(
                content=completion.text,
                tool_calls=[
                    {"name": c.name, "args": c.args, "id": c.id, "type": "tool_call"}
                    for c in completion.tool_calls
                ],
                usage_metadata={
                    "input_tokens": completion.usage.prompt_tokens,
                    "output_tokens": completion.usage.completion_tokens,
                    "total_tokens": completion.usage.total_tokens,
                },
                response_metadata={
                    "model_name": completion.model_id,
                    "finish_reason": completion.finish_reason,
                    "latency_s": completion.latency_s,
                },
            )
            generations.append(ChatGeneration(message=message))
        return ChatResult(generations=generations)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools to the backend; it answers with structured ``tool_calls``."""
        specs = tuple(convert_to_openai_tool(tool) for tool in tools)
        params = GenParams(**{**self.params.__dict__, "tools": specs})
        return self.model_copy(update={"params": params})
