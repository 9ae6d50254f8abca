"""``POST /v1/completions``: OpenAI's legacy completions on raw text, with ``echo`` and
``logprobs``, the way vLLM serves them, so an exam can be scored through ``ladder serve``
(``assistant.backends.openai_compat`` with a suite's raw prompts).

No strategy runs here: the text goes to the model as it is (no chat template). The model is
the server's model, an allowed model reference or an adapter name (``config.completion_model``);
the computation is ``assistant.backends.hf.echo.complete_texts`` on the local transformers
backend, on the same single worker as chat. The response has OpenAI's shape: ``choices[i]``
with ``text``, ``finish_reason`` and ``logprobs`` (``tokens``, ``token_logprobs``,
``text_offset``, ``top_logprobs``; null without ``logprobs``), and ``usage``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import CapabilityError, ConfigError

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.backends.hf.echo import TextCompletion

# Texts one request may score at once (an exam item sends one per option).
MAX_PROMPTS = 64
MAX_LOGPROBS = 20
MAX_NEW_TOKENS = 4096


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=300)
    prompt: str | list[str]
    max_tokens: int = Field(default=16, ge=0, le=MAX_NEW_TOKENS)  # OpenAI's default
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False
    user: str | None = Field(default=None, max_length=200)

    def prompts(self) -> list[str]:
        """The texts to complete, or a ``ConfigError`` (400) for what is not served."""
        if self.n != 1:
            raise ConfigError(f"n={self.n}: one choice per prompt")
        if self.stream:
            raise ConfigError("stream is not supported on /v1/completions")
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts:
            raise ConfigError("prompt: give a string or a non-empty list of strings")
        if len(prompts) > MAX_PROMPTS:
            raise ConfigError(f"prompt: at most {MAX_PROMPTS} texts per request, got {len(prompts)}")
        if self.max_tokens == 0 and not self.echo:
            raise ConfigError(
                "max_tokens=0 returns nothing without echo", hint="set echo: true to score the prompt"
            )
        return prompts


def completion_job(
    request: CompletionRequest, load_backend: Callable[[], LLMBackend]
) -> Callable[[], list[TextCompletion]]:
    """The job for the worker: the completions of ``request``'s prompts by the backend that
    ``load_backend`` gives (loaded on the worker: a first load takes seconds)."""
    prompts = request.prompts()
    stop = [request.stop] if isinstance(request.stop, str) else request.stop

    def job() -> list[TextCompletion]:
        from assistant.backends.hf.echo import complete_texts

        backend = load_backend()
        if not hasattr(backend, "tokenizer") or not hasattr(backend, "model"):
            raise CapabilityError(
                "this server's model cannot score raw text: /v1/completions needs a local transformers model",
                hint="serve a model pack or folder (--model)",
            )
        return complete_texts(
            backend,
            prompts,
            max_tokens=request.max_tokens,
            echo=request.echo,
            logprobs=request.logprobs,
            temperature=request.temperature or 0.0,
            stop=list(stop) if stop else None,
            seed=request.seed,
        )

    return job


def response(model: str, completions: list[TextCompletion], logprobs: bool) -> dict[str, Any]:
    prompt_tokens = sum(c.prompt_tokens for c in completions)
    completion_tokens = sum(c.completion_tokens for c in completions)
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": index,
                "text": c.text,
                "finish_reason": c.finish_reason,
                "logprobs": {
                    "tokens": c.tokens,
                    "token_logprobs": c.token_logprobs,
                    "text_offset": c.text_offset,
                    "top_logprobs": c.top_logprobs,
                }
                if logprobs
                else None,
            }
            for index, c in enumerate(completions)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
