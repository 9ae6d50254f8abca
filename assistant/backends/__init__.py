"""Model backends: ``hf_local`` (transformers), ``openai_compat`` (any /v1 server) and
``fake`` (scripted). Build one from a model reference with
:func:`assistant.backends.load.load_backend`."""

from assistant.backends.base import LLMBackend, backend_class, backend_names, register_backend

__all__ = ["LLMBackend", "backend_class", "backend_names", "register_backend"]
