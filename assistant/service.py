"""The one service API that the CLI, the UI, the runner and the server call.

Everything that answers a question goes through here, so a model, a setting or (later) a
strategy behaves the same wherever it is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from assistant.models.refs import load_backend, parse_model_ref
from assistant.settings import Settings
from assistant.types import Answer, GenParams, Message, Question, Trace

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend


def get_backend(model: str | None, settings: Settings) -> LLMBackend:
    """A backend for ``model``; local models are loaded once per process and reused."""
    ref = parse_model_ref(model, settings)
    if ref.kind == "fake":
        return load_backend(model, settings)
    key = (ref.text, settings.fingerprint())
    if key not in _BACKENDS:
        if len(_BACKENDS) >= _MAX_CACHED_BACKENDS:
            _BACKENDS.pop(next(iter(_BACKENDS)))
        _BACKENDS[key] = load_backend(ref.text, settings)
    return _BACKENDS[key]


# Loaded models by (reference, settings); a few at most, oldest dropped first.
_BACKENDS: dict[tuple[str, str], LLMBackend] = {}
_MAX_CACHED_BACKENDS = 3


def answer_questions(
    questions: Sequence[Question],
    *,
    model: str | None,
    settings: Settings,
    params: GenParams | None = None,
    system: str | None = None,
    backend: LLMBackend | None = None,
) -> list[Answer]:
    """Answer questions directly with the model, batched through the backend."""
    backend = backend or get_backend(model, settings)
    params = params or GenParams()
    conversations = []
    for question in questions:
        messages = [Message("system", system)] if system else []
        conversations.append([*messages, Message("user", question.user_input)])
    start = time.perf_counter()
    completions = backend.generate(conversations, params)
    wall = time.perf_counter() - start
    answers = []
    for question, completion in zip(questions, completions, strict=True):
        trace = Trace()
        trace.add("generate", finish_reason=completion.finish_reason, batch_wall_s=wall)
        answers.append(
            Answer(
                user_input=question.user_input,
                response=completion.text,
                usage=completion.usage,
                latency_s=completion.latency_s,
                model_id=completion.model_id,
                trace=trace,
                question_id=question.id,
                prompt_truncated=completion.prompt_truncated,
            )
        )
    return answers
