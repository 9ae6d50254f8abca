"""A scripted server that speaks the OpenAI chat protocol, for tests over real HTTP.

``FakeOpenAIServer`` builds a small FastAPI app (``GET /v1/models``,
``POST /v1/chat/completions``, streaming included) and records what it receives;
``serve(app)`` runs any ASGI app with uvicorn on a free loopback port in a background
thread and yields its base URL::

    server = FakeOpenAIServer(replies=["Paris"])
    with serve(server.app) as base_url:          # "http://127.0.0.1:<port>/v1"
        client = openai.OpenAI(base_url=base_url, api_key="x")
        ...
    assert server.chat_requests[0]["model"] == "test-model"

A reply is a string, or a dict ``{"content": "...", "tool_calls": [{"name": ...,
"arguments": {...} or "<json>", "id": ...}], "finish_reason": ...}``. ``replies`` is a
list (used in arrival order, then ``default``) or a function of the request body. The
default reply echoes the last user message as ``"echo: <text>"``, which keeps answers
tied to their request when many arrive at once.

Tokens are whitespace-separated words: usage counts them, ``max_tokens`` cuts at them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Reply = str | dict[str, Any]
ReplyScript = Sequence[Reply] | Callable[[dict[str, Any]], Reply]
LogprobScript = dict[str, float] | Callable[[dict[str, Any]], dict[str, float]]


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


def words(text: str) -> list[str]:
    return text.split()


def _last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _error(
    status: int, message: str, kind: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
        headers=headers,
    )


class FakeOpenAIServer:
    """A configurable OpenAI-compatible endpoint.

    - ``replies``: scripted replies (list or function of the request body).
    - ``models``: the served model ids; any other model gets a 404 like vLLM's.
    - ``api_key``: when set, requests without ``Authorization: Bearer <key>`` get 401.
    - ``delay_s``: wait this long before answering (stops early if the client goes away).
    - ``failures``: status codes for the first requests, one each (``[503, 503]``), or
      ``(status, message)`` pairs for a chosen error message; failed replies carry
      ``retry-after-ms: retry_after_ms`` so client retries are fast.
    - ``logprobs``: token -> logprob table (or a function of the body) used when a request
      asks for ``logprobs``; the reply is then the most likely token. With no table the
      server ignores the parameter and returns ``logprobs: null`` (as many servers do),
      or, with ``reject_logprobs``, answers 400.
    - ``usage``: report token usage (off: the response has no ``usage``).
    - ``honor_stop``: cut replies at the request's ``stop`` sequences, like real servers.
    """

    def __init__(
        self,
        replies: ReplyScript = (),
        *,
        default: Callable[[dict[str, Any]], Reply] | None = None,
        models: Sequence[str] = ("test-model",),
        api_key: str | None = None,
        delay_s: float = 0.0,
        failures: Sequence[int | tuple[int, str]] = (),
        retry_after_ms: int | None = 10,
        logprobs: LogprobScript | None = None,
        reject_logprobs: bool = False,
        usage: bool = True,
        honor_stop: bool = True,
    ) -> None:
        self._script: Callable[[dict[str, Any]], Reply] | None = replies if callable(replies) else None
        self._queue: list[Reply] = [] if callable(replies) else list(replies)
        self._default = default or (lambda body: f"echo: {_last_user(body)}")
        self.models = list(models)
        self.api_key = api_key
        self.delay_s = delay_s
        self._failures = list(failures)
        self.retry_after_ms = retry_after_ms
        self.logprobs = logprobs
        self.reject_logprobs = reject_logprobs
        self.usage = usage
        self.honor_stop = honor_stop
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.app = self._build_app()

    # -- what the tests look at -------------------------------------------------------

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of every ``/chat/completions`` request, failed ones included, in order."""
        return [r.body for r in self.received if r.path.endswith("/chat/completions")]

    # -- the app ----------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def list_models(request: Request) -> Any:
            self._record(request, {})
            denied = self._check_key(request)
            if denied is not None:
                return denied
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "ladder-tests"} for m in self.models
            ]
            return {"object": "list", "data": data}

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Any:
            body = await request.json()
            self._record(request, body)
            denied = self._check_key(request)
            if denied is not None:
                return denied
            with self._lock:
                failure = self._failures.pop(0) if self._failures else None
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if failure is not None:
                    status, message = (
                        failure if isinstance(failure, tuple) else (failure, f"scripted failure ({failure})")
                    )
                    headers = (
                        {"retry-after-ms": str(self.retry_after_ms)}
                        if self.retry_after_ms is not None
                        else None
                    )
                    return _error(status, message, "server_error", headers=headers)
                await self._wait(request)
                return self._complete(body)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return app

    def _record(self, request: Request, body: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(Received(request.url.path, body, dict(request.headers)))

    def _check_key(self, request: Request) -> JSONResponse | None:
        if self.api_key is None or request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    async def _wait(self, request: Request) -> None:
        deadline = time.monotonic() + self.delay_s
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
            if await request.is_disconnected():
                return

    def _next_reply(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._script is not None:
            reply = self._script(body)
        else:
            with self._lock:
                reply = self._queue.pop(0) if self._queue else self._default(body)
        return {"content": reply} if isinstance(reply, str) else dict(reply)

    def _complete(self, body: dict[str, Any]) -> Any:
        model = body.get("model")
        if model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError", "model_not_found")
        logprobs_block: dict[str, Any] | None = None
        if body.get("logprobs"):
            if self.logprobs is None and self.reject_logprobs:
                return _error(400, "logprobs are not supported by this server", "BadRequestError")
            if self.logprobs is not None:
                table = self.logprobs(body) if callable(self.logprobs) else self.logprobs
                reply: dict[str, Any] = {"content": max(table, key=table.__getitem__)}
                logprobs_block = _logprobs_block(table, int(body.get("top_logprobs") or 0))
            else:
                reply = self._next_reply(body)
        else:
            reply = self._next_reply(body)

        text = str(reply.get("content") or "")
        finish = reply.get("finish_reason")
        if self.honor_stop:
            stops = body.get("stop") or []
            for stop in [stops] if isinstance(stops, str) else stops:
                cut = text.find(stop)
                if stop and cut >= 0:
                    text, finish = text[:cut], finish or "stop"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens and len(words(text)) > max_tokens:
            text, finish = " ".join(words(text)[:max_tokens]), "length"
        tool_calls = [_tool_call(call) for call in reply.get("tool_calls", [])]
        finish = finish or ("tool_calls" if tool_calls else "stop")

        prompt_tokens = sum(len(words(str(m.get("content") or ""))) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words(text)),
            "total_tokens": prompt_tokens + len(words(text)),
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = _stream_chunks(
                completion_id,
                str(model),
                text,
                tool_calls,
                finish,
                usage if self.usage and include_usage else None,
            )
            return StreamingResponse(chunks, media_type="text/event-stream")

        message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        out: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs_block}
            ],
        }
        if self.usage:
            out["usage"] = usage
        return out


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    arguments = call.get("arguments", call.get("args", {}))
    return {
        "id": call.get("id") or f"call_{uuid.uuid4().hex[:8]}",
        "type": "function",
        "function": {
            "name": call["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


def _logprobs_block(table: dict[str, float], top_n: int) -> dict[str, Any]:
    ranked = sorted(table.items(), key=lambda item: -item[1])
    best, best_lp = ranked[0]
    return {
        "content": [
            {
                "token": best,
                "logprob": best_lp,
                "bytes": list(best.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked[:top_n]
                ],
            }
        ],
        "refusal": None,
    }


def _stream_chunks(
    completion_id: str,
    model: str,
    text: str,
    tool_calls: list[dict[str, Any]],
    finish: str,
    usage: dict[str, int] | None,
) -> Iterator[str]:
    created = int(time.time())

    def chunk(
        delta: dict[str, Any],
        finish_reason: str | None = None,
        chunk_usage: dict[str, int] | None = None,
        choices: bool = True,
    ) -> str:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": (
                [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
                if choices
                else []
            ),
        }
        if chunk_usage is not None:
            data["usage"] = chunk_usage
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    pieces = text.split(" ")
    for i, piece in enumerate(pieces):
        content = piece if i == 0 else " " + piece
        if content:
            yield chunk({"content": content})
    for i, call in enumerate(tool_calls):
        yield chunk({"tool_calls": [{"index": i, **call}]})
    yield chunk({}, finish_reason=finish)
    if usage is not None:
        yield chunk({}, chunk_usage=usage, choices=False)
    yield "data: [DONE]\n\n"


def free_port() -> int:
    """A loopback port that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, prefix: str = "/v1", startup_timeout_s: float = 10.0) -> Iterator[str]:
    """Run an ASGI app (or an object with ``.app``) on 127.0.0.1 in a background thread.

    Yields ``http://127.0.0.1:<port><prefix>``; the server stops when the block ends.
    """
    asgi = getattr(app, "app", app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi, log_level="warning", lifespan="auto", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"openai-test-server-{port}"
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("test server failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"test server did not start within {startup_timeout_s} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}{prefix}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
