"""The one abstraction every model backend implements, and the backend registry.

Backends are registered by name as ``"module:Class"`` strings so that naming a backend
never imports torch or the openai client: the module is imported only when the backend
is built (lm-eval's ``MODEL_MAPPING`` pattern).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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


_BACKENDS: dict[str, str] = {}


def register_backend(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name``; a second registration is a bug."""
    if name in _BACKENDS:
        raise KeyError(f"backend {name!r} is already registered ({_BACKENDS[name]})")
    if ":" not in target:
        raise ValueError(f"backend target must be 'module:Class', got {target!r}")
    _BACKENDS[name] = target


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[Any]:
    try:
        target = _BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; known: {', '.join(backend_names())}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


register_backend("hf_local", "assistant.backends.hf.local:HFLocalBackend")
register_backend("openai_compat", "assistant.backends.openai_compat:OpenAICompatBackend")
register_backend("fake", "assistant.backends.fake:FakeBackend")


def trim_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
