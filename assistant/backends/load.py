"""Build the backend a model reference names, through the backend registry.

``parse_model_ref`` (``assistant.models.refs``) says what kind of model a reference is;
each kind is served by one registered backend, whose ``from_ref`` classmethod builds it
from the parsed reference. The backend's module (torch, the openai client) is imported only
here, when a backend is built.

A model reference is code-like input (``openai:<m>@<url>`` connects somewhere,
``fake:<path>`` reads a file): callers pass references from the command line, the
settings or the server's own start-up flags, never a client's request (``ui.server``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.backends.base import backend_class
from assistant.models.refs import ModelRef, RefKind, parse_model_ref

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.settings import Settings

# Which registered backend serves each kind of reference.
BACKEND_FOR_KIND: dict[RefKind, str] = {
    "pack": "hf_local",
    "folder": "hf_local",
    "openai": "openai_compat",
    "fake": "fake",
    "gguf": "llama_cpp",
}


def build_backend(ref: ModelRef, settings: Settings) -> LLMBackend:
    """The backend for an already parsed reference."""
    backend: LLMBackend = backend_class(BACKEND_FOR_KIND[ref.kind]).from_ref(ref, settings)
    return backend


def load_backend(text: str | None, settings: Settings) -> LLMBackend:
    """Parse a model reference (``None``: the ``model`` setting) and build its backend."""
    return build_backend(parse_model_ref(text, settings), settings)
