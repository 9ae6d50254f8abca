"""A scripted ``/v1/completions`` endpoint (OpenAI's legacy completions with ``echo`` and
``logprobs``), for the raw-prompt scoring tests of ``openai_compat``.

Tokens are runs of optional whitespace followed by non-space characters (``"Answer: A"`` is
``["Answer:", " A"]``); a token's logprob is ``table[token]`` (default -3.0), so a test knows
exactly which tokens a score summed. Switches make it behave like servers that cannot score:
``refuse_zero`` (400 on ``max_tokens=0``, then a generated token " Z" with ``max_tokens=1``),
``no_logprobs`` (``logprobs: null``), ``ignore_echo`` (only generated tokens come back),
``reject_echo`` (400 naming echo), ``failures`` (statuses for the first requests) and
``delay_s`` (in-flight requests are counted: ``max_in_flight``).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

TOKEN = re.compile(r"\s*\S+|\s+")
DEFAULT_LOGPROB = -3.0


def stub_tokens(text: str) -> list[tuple[str, int]]:
    return [(m.group(), m.start()) for m in TOKEN.finditer(text)]


class CompletionsStub:
    def __init__(
        self,
        table: dict[str, float] | None = None,
        *,
        models: Sequence[str] = ("test-model",),
        refuse_zero: bool = False,
        no_logprobs: bool = False,
        ignore_echo: bool = False,
        reject_echo: bool = False,
        failures: Sequence[int] = (),
        delay_s: float = 0.0,
    ) -> None:
        self.table = dict(table or {})
        self.models = list(models)
        self.refuse_zero, self.no_logprobs = refuse_zero, no_logprobs
        self.ignore_echo, self.reject_echo = ignore_echo, reject_echo
        self.failures = list(failures)
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self.app = self._build()

    def logprob(self, token: str) -> float:
        return self.table.get(token, DEFAULT_LOGPROB)

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/completions")
        async def completions(request: Request) -> Any:
            body = await request.json()
            with self._lock:
                self.requests.append(body)
                failure = self.failures.pop(0) if self.failures else None
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay_s)
                if failure is not None:
                    return _error(failure, f"scripted failure ({failure})", {"retry-after-ms": "5"})
                return self._answer(body)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return app

    def _answer(self, body: dict[str, Any]) -> Any:
        if body.get("model") not in self.models:
            return _error(404, f"The model `{body.get('model')}` does not exist.")
        if self.reject_echo and body.get("echo"):
            return _error(400, "echo is not supported by this server")
        max_tokens = body.get("max_tokens", 16)
        if self.refuse_zero and max_tokens == 0:
            return _error(400, "max_tokens must be at least 1, got 0")
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = []
        for index, prompt in enumerate(prompts):
            generated = " Z" if max_tokens else ""
            tokens = stub_tokens(prompt + generated)
            if not body.get("echo") or self.ignore_echo:
                tokens = [(t, o) for t, o in tokens if o >= len(prompt)]
            logprobs = None
            if body.get("logprobs") is not None and not self.no_logprobs:
                logprobs = {
                    "tokens": [t for t, _ in tokens],
                    "token_logprobs": [None if o == 0 else self.logprob(t) for t, o in tokens],
                    "text_offset": [o for _, o in tokens],
                    "top_logprobs": [None if o == 0 else {t: self.logprob(t)} for t, o in tokens],
                }
            text = (prompt if body.get("echo") else "") + generated
            choices.append({"index": index, "text": text, "logprobs": logprobs, "finish_reason": "length"})
        return {"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": body["model"],
                "choices": choices}  # fmt: skip


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "BadRequestError", "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)
