"""The FastAPI app behind ``ladder serve``: ``/v1/models``, ``/v1/chat/completions`` (with SSE
streaming), ``/v1/completions`` (raw text with ``echo``/``logprobs``, ``ui.server.completions``)
and ``/v1/feedback``.

Every answer goes through ``assistant.service.build_strategy`` and ``Strategy.answer``: the
same code path as ``ladder ask``, the runner and the UI. Model calls run on one worker thread
behind a bounded queue (``worker.Worker``): a full queue answers 429 at once.

A streamed reply sends the role chunk as soon as the request is accepted, then one content
chunk per piece of text as the model produces it, then the finish chunk carrying
``citations`` (and a usage chunk when asked). Tokens stream where the answer is one generate
call's text (prompt, fewshot, rag; ``Strategy.streams``) and the backend streams (hf_local,
fake): the job runs under a sink (``assistant.backends.streaming``) that hands each piece
from the worker thread to the event loop. Whatever did not stream - a drafting strategy
(reflection, agent), an openai_compat backend, RAG's "not found" answer - arrives as one
content chunk when the answer is ready, as does any rest of a streamed answer.

Before any route: the API key (``Authorization: Bearer <key>``; without a valid one every
path answers 401) and the body size limit (413).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from assistant.backends.streaming import Sink, remainder
from assistant.errors import LadderError, ModelNotFoundError
from assistant.settings import Settings
from ui.server import openai_format as fmt
from ui.server.completions import CompletionRequest, completion_job
from ui.server.completions import response as completion_response
from ui.server.config import UNKNOWN_MODEL, ServerConfig, completion_model, model_names, resolve_model
from ui.server.worker import QueueFull, Worker

if TYPE_CHECKING:
    from fastapi import FastAPI

    from assistant.backends.base import LLMBackend
    from assistant.strategies.base import BaseStrategy
    from assistant.types import Answer

log = logging.getLogger("ladder.server")
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]
_MAX_STRATEGIES = 16


# What a client is told when the model backend failed; the details (an upstream's URL and
# error text) go to the server log, not to whoever sent the request.
BACKEND_FAILED = "the model backend failed to answer; the server log has the details"


def status_of(exc: LadderError) -> tuple[int, str]:
    """An HTTP status and OpenAI error type for a user-caused error, from its CLI exit code:
    3 (unknown model, knowledge base, feedback id) is 404, 5 (an endpoint failed) is 502."""
    if exc.exit_code == 3:
        return 404, "not_found_error"
    if exc.exit_code == 5:
        return 502, "backend_error"
    return 400, "invalid_request_error"


def public_error(exc: LadderError) -> tuple[int, str, str]:
    """(status, type, message) for a client: a backend failure is logged and summarised."""
    status, kind = status_of(exc)
    if status == 502:
        log.warning("backend failure: %s", exc)
        return status, kind, BACKEND_FAILED
    return status, kind, str(exc)


class Guard:
    """Pure ASGI middleware: the API key first, then the body size limit."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if not self.config.key_ok(key):
            message = "a valid API key is required (Authorization: Bearer <key>)"
            await _send_json(send, 401, fmt.error_body(message, "invalid_request_error", "invalid_api_key"))
            return
        limit = self.config.max_request_bytes
        too_large = fmt.error_body(f"request body over {limit:,} bytes", "invalid_request_error", "too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, too_large)
            return
        received = 0

        async def limited_receive() -> Any:
            # A body without Content-Length (chunked) is counted as it arrives; FastAPI turns
            # an HTTPException raised while it reads the body into the response.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, too_large["error"]["message"])
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class Server:
    """The state one app holds: settings, config, the worker, built strategies, recent answers."""

    def __init__(self, settings: Settings, config: ServerConfig, backend: LLMBackend | None = None) -> None:
        self.settings, self.config, self.backend = settings, config, backend
        self.worker = Worker(config.queue_size)
        self._strategies: OrderedDict[str, BaseStrategy] = OrderedDict()  # touched on the worker only
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()  # touched on the event loop only

    def strategy(self, name: str, overrides: dict[str, Any]) -> BaseStrategy:
        """Built once per (name, overrides) and reused: a RAG strategy keeps its knowledge base open."""
        from assistant.knowledge import KnowledgeBaseNotFound
        from assistant.service import build_strategy

        key = json.dumps([name, overrides], sort_keys=True, default=str)
        if key not in self._strategies:
            spec = resolve_model(name, self.config, self.settings)
            try:
                built = build_strategy(spec, self.settings, backend=self.backend, **overrides)
            except KnowledgeBaseNotFound:  # deleted since it was offered; its message names the path
                raise ModelNotFoundError(UNKNOWN_MODEL) from None
            if len(self._strategies) >= _MAX_STRATEGIES:
                self._strategies.popitem(last=False)
            self._strategies[key] = built
        self._strategies.move_to_end(key)
        return self._strategies[key]

    def answer_job(
        self, request: fmt.ChatRequest, sink: Sink | None = None
    ) -> Callable[[], tuple[Answer, str, int]]:
        """The job for the worker; ``sink`` receives the answer's text as it is generated."""
        from assistant.service import answer_streaming

        # Bad input and unknown model names fail here, before queueing.
        question, overrides = fmt.to_question(request)
        resolve_model(request.model, self.config, self.settings)

        def job() -> tuple[Answer, str, int]:
            strategy = self.strategy(request.model, overrides)
            answer = answer_streaming(
                strategy, question, sink, log_source="api", session_id=request.session_id or request.user
            )
            return answer, strategy.name, strategy.config.max_new_tokens

        return job

    def remember(self, cid: str, request: fmt.ChatRequest, answer: Answer, strategy: str) -> None:
        self.recent[cid] = {
            "question": answer.user_input,
            "answer": answer.response,
            "model": request.model,
            "strategy": strategy,
            "contexts": list(answer.retrieved_contexts),
            "citations": fmt.extras(answer, strategy)["citations"],
            "session_id": request.session_id or request.user,
        }
        while len(self.recent) > self.config.recent_answers:
            self.recent.popitem(last=False)


def create_app(settings: Settings, config: ServerConfig, backend: LLMBackend | None = None) -> FastAPI:
    """The app; ``backend`` (tests, the demo) answers for every model name instead of loading one."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    server = Server(settings, config, backend)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        server.worker.shutdown()

    app = FastAPI(title="Ladder", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.server = server
    app.add_middleware(Guard, config=config)

    def error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
        headers = {"Retry-After": "1"} if status == 429 else None
        return JSONResponse(fmt.error_body(message, kind, code), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where}: {first.get('msg', 'invalid request')}", "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(LadderError)
    async def _ladder_error(_request: Request, exc: LadderError) -> JSONResponse:
        status, kind, message = public_error(exc)
        return error(status, message, kind)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        names = await run_in_threadpool(model_names, config, settings)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "ladder"} for name in names]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: fmt.ChatRequest) -> JSONResponse | StreamingResponse | dict[str, Any]:
        # Text pieces from the worker thread, then None once the job has ended.
        deltas: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def sink(delta: str | None) -> None:
            if not loop.is_closed():  # the server is shutting down: nobody reads any more
                loop.call_soon_threadsafe(deltas.put_nowait, delta)

        job = server.answer_job(request, sink if request.stream else None)
        try:
            future = server.worker.submit(job)
        except QueueFull as exc:
            return error(429, f"busy: {exc}; try again shortly", "rate_limit_error", "queue_full")
        cid = fmt.completion_id()
        if not request.stream:
            answer, strategy, max_new = await asyncio.wrap_future(future)
            server.remember(cid, request, answer, strategy)
            return fmt.completion(cid, request.model, answer, strategy, fmt.finish_reason(answer, max_new))
        # Runs after the job's last sink call, so the end marker comes after every piece.
        future.add_done_callback(lambda _future: sink(None))
        include_usage = bool((request.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            _stream(server, cid, request, future, deltas, include_usage), media_type="text/event-stream"
        )

    @app.post("/v1/completions", response_model=None)
    async def completions(request: CompletionRequest) -> JSONResponse | dict[str, Any]:
        reference = completion_model(request.model, config, settings)

        def load() -> LLMBackend:
            from assistant.service import get_backend

            return server.backend if server.backend is not None else get_backend(reference, settings)

        job = completion_job(request, load)
        try:
            future = server.worker.submit(job)
        except QueueFull as exc:
            return error(429, f"busy: {exc}; try again shortly", "rate_limit_error", "queue_full")
        done = await asyncio.wrap_future(future)
        return completion_response(request.model, done, request.logprobs is not None)

    @app.post("/v1/feedback")
    async def feedback(request: fmt.FeedbackRequest) -> dict[str, Any]:
        from assistant.feedback import FeedbackError, record_feedback

        if request.model is not None:  # only names the server answers for, never a reference or path
            resolve_model(request.model, config, settings)
        known = server.recent.get(request.completion_id or "", {})
        if request.completion_id and not known and not (request.question and request.answer):
            raise FeedbackError(
                f"unknown completion_id {request.completion_id!r}",
                hint="the server remembers recent answers only; send question and answer too",
            )
        # What the server itself remembers of the answer wins over what the client says.
        values: dict[str, Any] = {
            "question": request.question,
            "answer": request.answer,
            "model": request.model,
        }
        values.update(known)
        values["session_id"] = request.session_id or values.get("session_id")
        item = await run_in_threadpool(
            lambda: record_feedback(
                settings,
                question=values.get("question") or "",
                answer=values.get("answer") or "",
                rating=request.rating,
                correction=request.correction,
                comment=request.comment,
                model=values.get("model"),
                strategy=values.get("strategy"),
                contexts=values.get("contexts", []),
                citations=values.get("citations", []),
                session_id=values.get("session_id"),
                source="api",
            )
        )
        return {
            "object": "feedback",
            "id": item.id,
            "status": item.status,
            "completion_id": request.completion_id,
        }

    return app


async def _stream(
    server: Server,
    cid: str,
    request: fmt.ChatRequest,
    future: Any,
    deltas: asyncio.Queue[str | None],
    include_usage: bool,
) -> AsyncIterator[str]:
    def event(data: dict[str, Any]) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield event(fmt.chunk(cid, request.model, {"role": "assistant", "content": ""}))
    streamed = ""
    while (delta := await deltas.get()) is not None:
        streamed += delta
        yield event(fmt.chunk(cid, request.model, {"content": delta}))
    try:
        answer, strategy, max_new = await asyncio.wrap_future(future)
    except LadderError as exc:
        status, kind, message = public_error(exc)
        yield event(fmt.error_body(message, kind, str(status)))
        return
    except Exception:
        log.exception("answering a streamed request failed")
        yield event(fmt.error_body("internal error while answering", "server_error"))
        return
    server.remember(cid, request, answer, strategy)
    rest = remainder(streamed, answer.response)
    if rest or not streamed:
        yield event(fmt.chunk(cid, request.model, {"content": rest}))
    last = fmt.chunk(cid, request.model, {}, fmt.finish_reason(answer, max_new))
    yield event({**last, **fmt.extras(answer, strategy)})
    if include_usage:
        yield event({**fmt.chunk(cid, request.model, {}), "choices": [], "usage": fmt.usage(answer)})
    yield "data: [DONE]\n\n"
