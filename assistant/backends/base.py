"""The one abstraction every model backend implements, and the backend registry.

Backends are registered by name (``assistant.registry``) as ``"module:Class"`` strings so that
naming a backend never imports torch or the openai client: the module is imported only when
the backend is built (lm-eval's ``MODEL_MAPPING`` pattern).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from assistant.registry import Registry
from assistant.types import Completion, GenParams, Message

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


@runtime_checkable
class LLMBackend(Protocol):
    model_id: str

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        """One completion per conversation, in input order."""
        ...

    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        """For each prompt, the log-probability of each choice continuing it.

        With ``chat_template`` the prompt is the user's message and each choice is scored as
        the start of the assistant's reply (through the chat template where the model has
        one). Without it the prompt is raw text that the choice continues, as exam harnesses
        (lm-evaluation-harness, C-Eval's own) score completion-style few-shot prompts.
        """
        ...

    def chat_model(self) -> BaseChatModel:
        """A LangChain chat model over this backend, for LangGraph and ragas."""
        ...


# Backend classes by name; ``assistant.backends.load`` builds one from a model reference with
# the class's ``from_ref``. The modules (torch, openai) are imported only when one is built.
BACKENDS: Registry[type[Any]] = Registry("backend")


def register_backend(name: str, target: str | type[Any]) -> None:
    """Register ``"module:Class"`` (or a class) under ``name``; a second registration is a bug."""
    BACKENDS.register(name, target)


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def backend_class(name: str) -> type[Any]:
    """The class registered as ``name``; an unknown name raises ``UnknownNameError`` (a ``KeyError``)."""
    return BACKENDS.get(name)


register_backend("fake", "assistant.backends.fake:FakeBackend")
register_backend("hf_local", "assistant.backends.hf.local:HFLocalBackend")
register_backend("openai_compat", "assistant.backends.openai_compat:OpenAICompatBackend")
register_backend("llama_cpp", "assistant.backends.llama_cpp:LlamaCppBackend")


# A prompt over its budget keeps this many tokens of its start (the system prompt, the task) and
# fills the rest from its end (the question), when context_overflow is "truncate".
KEEP_HEAD_TOKENS = 64


def template_messages(conversation: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation as chat templates read it: tool-call arguments as a mapping."""
    messages = [m.to_dict() for m in conversation]
    for message in messages:
        for call in message.get("tool_calls", []):
            call["type"] = "function"
            call["function"] = {"name": call["name"], "arguments": call["args"]}
    return messages


def transcript(messages: Sequence[dict[str, Any]]) -> str:
    """A base model without a chat template sees a plain transcript."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


class LocalPrompts:
    """How a local backend (hf_local, llama_cpp) fits prompts into its context window, so both
    cut a long prompt alike. Needs ``settings``, ``model_id`` and ``context_window``."""

    settings: Any
    model_id: str
    context_window: int

    def _generation_budget(self, params: GenParams) -> int:
        """Prompt tokens left once ``max_new_tokens`` is reserved; none left is an error."""
        budget = self.context_window - params.max_new_tokens
        if budget <= 0:
            from assistant.errors import ContextOverflowError

            raise ContextOverflowError(
                f"max_new_tokens={params.max_new_tokens} leaves no room "
                f"in a {self.context_window}-token context"
            )
        return budget

    def _fit(self, ids: list[int], budget: int) -> tuple[list[int], bool]:
        """Make a prompt fit ``budget`` tokens by the ``context_overflow`` policy: (ids, truncated)."""
        if len(ids) <= budget:
            return ids, False
        if self.settings.context_overflow == "error":
            from assistant.errors import ContextOverflowError

            raise ContextOverflowError(
                f"prompt has {len(ids)} tokens; {self.model_id} allows {budget} "
                f"(context {self.context_window} minus the generation budget)",
                hint="shorten the prompt, lower max_new_tokens, or set context_overflow=truncate",
            )
        import logging

        head = min(KEEP_HEAD_TOKENS, budget // 4)
        logging.getLogger(type(self).__module__).warning(
            "prompt of %d tokens truncated to %d to fit %s", len(ids), budget, self.model_id
        )
        return ids[:head] + ids[len(ids) - (budget - head) :], True


def trim_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
