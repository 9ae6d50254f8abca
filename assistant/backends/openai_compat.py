"""A backend over any OpenAI-compatible ``/v1`` endpoint: vLLM, Ollama, llama.cpp server,
a cloud provider, or ``ladder serve`` itself.

It uses the official ``openai`` client, which retries connection errors, 408/409/429 and
5xx replies with exponential backoff (``max_retries``) and honours ``Retry-After``. Every
client error is turned into a Ladder error with a hint; no openai exception leaves this
module. Under a JSON schema (``assistant.backends.json_schema.respond_with_schema``) a request
carries it as ``response_format`` (vLLM and llama.cpp server constrain the reply to it); a
server that refuses the parameter is asked without it, from then on. Exam prompts in raw mode
are scored through ``/v1/completions`` with ``echo`` and ``logprobs`` (``score_choices``); a
server without them is a ``CapabilityError`` (exit 6).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import openai

from assistant.backends.base import trim_at_stop
from assistant.backends.json_schema import current_schema
from assistant.errors import (
    BackendError,
    CapabilityError,
    ContextOverflowError,
    LadderError,
    ModelNotFoundError,
)
from assistant.settings import Settings, load_settings
from assistant.types import Completion, GenParams, Message, ToolCall, Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from assistant.models.refs import ModelRef

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# The OpenAI API takes at most four stop sequences; the rest are applied client-side.
MAX_STOP = 4
# How many alternatives ``score_choices`` asks for (the OpenAI maximum).
TOP_LOGPROBS = 20
# A choice longer than this cannot be a single token of any usual vocabulary.
MAX_CHOICE_CHARS = 8
_MCQ_HINT = (
    "use generate-mode MCQ scoring instead (the model writes its answer and the letter is "
    "parsed from the text), or serve the model with a server that returns logprobs (e.g. vLLM)"
)

_RAW_HINT = (
    "use `--mode generate` (the model writes its answer and the letter is parsed), set "
    "`chat_template: true` in the suite to score through the chat endpoint, or serve the model "
    "with /v1/completions echo + logprobs (vLLM, `ladder serve`)"
)


def _openai_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        out: dict[str, Any] = {"role": "tool", "content": message.content}
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
        return out
    out = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.args, ensure_ascii=False)},
            }
            for call in message.tool_calls
        ]
    if message.name:
        out["name"] = message.name
    return out


def _parse_arguments(raw: str | None) -> dict[str, Any]:
    if not raw or not raw.strip():
        return {}
    try:
        args = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return args if isinstance(args, dict) else {"_raw": raw}


def _parse_tool_calls(message: Any) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        custom = getattr(call, "custom", None)
        call_id = getattr(call, "id", None) or ToolCall("", {}).id
        if function is not None:
            calls.append(ToolCall(function.name, _parse_arguments(function.arguments), call_id))
        elif custom is not None:
            calls.append(ToolCall(custom.name, {"input": custom.input}, call_id))
    return calls


def _server_message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if message:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


class OpenAICompatBackend:
    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.model = model
        self.base_url = base_url
        self.model_id = f"openai:{model}@{base_url}"
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or self.settings.openai_api_key or "EMPTY",
            timeout=self.settings.request_timeout_s,
            max_retries=self.settings.max_retries,
        )
        # Whether the server takes ``response_format`` with a JSON schema (vLLM and llama.cpp
        # server do); set to False the first time it refuses one, so it is asked once.
        self.accepts_json_schema = True
        # ``max_tokens`` of raw scoring requests: 0 (score the text only), or 1 once the server
        # has refused 0 (vLLM takes 0 with echo; some servers do not).
        self.echo_max_tokens = 0

    @classmethod
    def from_ref(cls, ref: ModelRef, settings: Settings) -> OpenAICompatBackend:
        """``openai:<model>@<base_url>`` (``assistant.backends.load``)."""
        return cls(ref.target, ref.base_url or "", settings=settings)

    # -- LLMBackend ---------------------------------------------------------------------

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        # Read here: the worker threads of ``_map`` do not see this thread's context.
        schema = current_schema()
        return self._map(lambda conversation: self._generate_one(conversation, params, schema), batch)

    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        """Log-probability of each choice after each prompt.

        With ``chat_template`` (through the chat endpoint, which applies the model's template):
        each single-token choice as the first token of the reply; several vocabulary entries may
        strip to the same choice (``"A"`` and ``" A"``), and their probabilities are summed.

        Without it (raw prompts, an exam suite's default) through ``/v1/completions`` the way
        lm-evaluation-harness's ``local-completions`` scores: one request per prompt carries
        prompt + choice for every choice, with ``echo``, ``logprobs`` and ``max_tokens=0`` (1
        where the server refuses 0); a choice's score is the sum of the logprobs of its tokens,
        found by ``text_offset`` from the one that holds the choice's first character to the end
        of the text (``_continuation_logprob``). Prompts go out ``max_concurrency`` at a time.
        """
        if not chat_template:
            if not choices or any(not c for c in choices):
                raise ValueError(f"score_choices needs non-empty choices, got {list(choices)!r}")
            return self._map(lambda prompt: self._score_raw(prompt, list(choices)), prompts)
        wanted = [choice.strip() for choice in choices]
        too_long = [
            c
            for c in choices
            if not c.strip() or len(c.strip()) > MAX_CHOICE_CHARS or any(ch.isspace() for ch in c.strip())
        ]
        if too_long:
            raise CapabilityError(
                f"{self.model_id}: logprob scoring over an endpoint handles single-token choices "
                f"only (such as 'A'..'D'); cannot score {too_long[0]!r}",
                hint=_MCQ_HINT,
            )
        return self._map(lambda prompt: self._score_one(prompt, wanted), prompts)

    def chat_model(self) -> BaseChatModel:
        from assistant.backends.chat_model import LadderChatModel

        return LadderChatModel(backend=self)

    def list_models(self) -> list[str]:
        """The model ids the endpoint serves."""
        try:
            return sorted(model.id for model in self._client.models.list())
        except openai.OpenAIError as exc:
            raise self._translate(exc) from None

    # -- internals ----------------------------------------------------------------------

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` with at most ``max_concurrency`` requests at once, in order."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        workers = min(self.settings.max_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ladder-openai") as pool:
            futures: list[Future[R]] = [pool.submit(fn, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _create(self, **kwargs: Any) -> Any:
        try:
            return self._client.chat.completions.create(model=self.model, **kwargs)
        except openai.OpenAIError as exc:
            raise self._translate(exc) from None

    def _create_json(self, schema: dict[str, Any], **kwargs: Any) -> Any:
        """A completion constrained to ``schema`` through ``response_format``; the same request
        without it when the server refuses the parameter (HTTP 400/422 naming it), after which
        this backend stops asking."""
        if not self.accepts_json_schema:
            return self._create(**kwargs)
        response_format: Any = {
            "type": "json_schema",
            "json_schema": {"name": str(schema.get("title") or "reply")[:64], "schema": schema},
        }
        try:
            return self._client.chat.completions.create(
                model=self.model, response_format=response_format, **kwargs
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            message = _server_message(exc)
            if not any(word in message.lower() for word in ("response_format", "json_schema")):
                raise self._translate(exc) from None
            self.accepts_json_schema = False
            log.info("%s does not take response_format (%s); asking without it", self.base_url, message)
            return self._create(**kwargs)
        except openai.OpenAIError as exc:
            raise self._translate(exc) from None

    def _generate_one(
        self, conversation: list[Message], params: GenParams, schema: dict[str, Any] | None = None
    ) -> Completion:
        kwargs: dict[str, Any] = {
            "messages": [_openai_message(m) for m in conversation],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.stop:
            kwargs["stop"] = list(params.stop[:MAX_STOP])
        if params.tools:
            kwargs["tools"] = list(params.tools)
        start = time.perf_counter()
        response = self._create_json(schema, **kwargs) if schema is not None else self._create(**kwargs)
        latency = time.perf_counter() - start

        if not response.choices:
            raise BackendError(f"{self.base_url} returned no choices for {self.model!r}")
        choice = response.choices[0]
        text, stopped = trim_at_stop(choice.message.content or "", params.stop)
        calls = _parse_tool_calls(choice.message)
        finish = choice.finish_reason or "stop"
        if stopped:
            finish = "stop"
        if calls or finish == "function_call":
            finish = "tool_calls"
        usage = response.usage
        return Completion(
            text=text,
            usage=Usage(
                prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
                completion_tokens=(usage.completion_tokens or 0) if usage else 0,
                model_calls=1,
            ),
            latency_s=latency,
            model_id=self.model_id,
            finish_reason=finish,
            tool_calls=calls,
        )

    def _score_one(self, prompt: str, choices: list[str]) -> list[float]:
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            raise CapabilityError(
                f"{self.base_url} gives no logprobs for {self.model!r} "
                f"(it rejected the request: {_server_message(exc)})",
                hint=_MCQ_HINT,
            ) from None
        except openai.OpenAIError as exc:
            raise self._translate(exc) from None

        content = None
        if response.choices and response.choices[0].logprobs is not None:
            content = response.choices[0].logprobs.content
        if not content:
            raise CapabilityError(
                f"{self.base_url} gives no logprobs for {self.model!r}, so choices cannot be scored",
                hint=_MCQ_HINT,
            )
        first = content[0]
        entries = {alt.token: alt.logprob for alt in first.top_logprobs or []}
        entries.setdefault(first.token, first.logprob)
        by_choice: dict[str, list[float]] = {}
        for token, logprob in entries.items():
            by_choice.setdefault(token.strip(), []).append(logprob)
        return [_logsumexp(by_choice[c]) if c in by_choice else float("-inf") for c in choices]

    def _score_raw(self, prompt: str, choices: list[str]) -> list[float]:
        """Sum of the logprobs of each choice's tokens after ``prompt`` (``/v1/completions``)."""
        texts = [prompt + choice for choice in choices]
        response = self._echo(texts)
        by_index = sorted(response.choices or [], key=lambda c: c.index)
        if len(by_index) != len(texts):
            raise BackendError(
                f"{self.base_url} returned {len(by_index)} completions for {len(texts)} prompts "
                f"({self.model!r})"
            )
        return [
            self._continuation_logprob(choice.logprobs, len(prompt), len(text))
            for choice, text in zip(by_index, texts, strict=True)
        ]

    def _echo(self, texts: list[str]) -> Any:
        """The completions response scoring ``texts``; ``max_tokens`` 0, or 1 from the first time
        the server refuses 0 (the extra token is left out of every sum)."""
        while True:
            try:
                return self._client.completions.create(
                    model=self.model,
                    prompt=texts,
                    echo=True,
                    logprobs=1,
                    max_tokens=self.echo_max_tokens,
                    temperature=0.0,
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                message = _server_message(exc)
                if self.echo_max_tokens == 0 and "max_tokens" in message.lower():
                    log.info(
                        "%s refuses max_tokens=0 (%s); scoring with max_tokens=1", self.base_url, message
                    )
                    self.echo_max_tokens = 1
                    continue
                if "context length" in message.lower():
                    raise self._translate(exc) from None
                raise CapabilityError(
                    f"{self.base_url} cannot score raw prompts for {self.model!r} "
                    f"(it rejected echo/logprobs on /v1/completions: {message})",
                    hint=_RAW_HINT,
                ) from None
            except (openai.NotFoundError, openai.APIStatusError) as exc:
                if exc.status_code in (404, 405) and not self._names_model(_server_message(exc)):
                    raise CapabilityError(
                        f"{self.base_url} has no /v1/completions route, so raw prompts cannot be scored "
                        f"for {self.model!r}",
                        hint=_RAW_HINT,
                    ) from None
                raise self._translate(exc) from None
            except openai.OpenAIError as exc:
                raise self._translate(exc) from None

    def _names_model(self, message: str) -> bool:
        """Whether a 404's message is about the model (vLLM: "The model `x` does not exist")
        rather than the route (FastAPI: "Not Found")."""
        lowered = message.lower()
        return self.model.lower() in lowered or "model" in lowered

    def _continuation_logprob(self, logprobs: Any, prompt_chars: int, text_chars: int) -> float:
        """Sum of the token logprobs from the token holding character ``prompt_chars`` (the
        choice's first) up to ``text_chars`` (the end of prompt + choice; a token generated
        after it, with ``max_tokens=1``, is not counted)."""
        offsets = list(getattr(logprobs, "text_offset", None) or []) if logprobs is not None else []
        values = list(getattr(logprobs, "token_logprobs", None) or []) if logprobs is not None else []
        if not offsets or len(offsets) != len(values):
            raise CapabilityError(
                f"{self.base_url} gives no token logprobs with text offsets for {self.model!r} "
                "on /v1/completions, so raw prompts cannot be scored",
                hint=_RAW_HINT,
            )
        if offsets[0] != 0:
            raise CapabilityError(
                f"{self.base_url} does not echo the prompt's tokens for {self.model!r} "
                "(no `echo` with logprobs), so raw prompts cannot be scored",
                hint=_RAW_HINT,
            )
        # The choice's tokens: every one starting at or after its first character (a character
        # split into byte tokens gives several the same offset), and the one before them when
        # it runs across the boundary (it starts in the prompt and ends in the choice).
        start = next((i for i, offset in enumerate(offsets) if offset >= prompt_chars), len(offsets))
        if start == len(offsets) or offsets[start] > prompt_chars:
            start -= 1
        picked = [values[i] for i in range(start, len(offsets)) if offsets[i] < text_chars]
        if not picked or any(value is None for value in picked):
            raise CapabilityError(
                f"{self.base_url} returned no logprob for the choice tokens of {self.model!r}",
                hint=_RAW_HINT,
            )
        return float(sum(picked))

    def _translate(self, exc: openai.OpenAIError) -> LadderError:
        """An openai exception as the Ladder error a user can act on."""
        url = self.base_url
        timeout = self.settings.request_timeout_s
        retries = self.settings.max_retries
        tried = f" after {retries + 1} attempts" if retries else ""
        # APITimeoutError is a subclass of APIConnectionError: test it first.
        if isinstance(exc, openai.APITimeoutError):
            return BackendError(
                f"{url} did not answer within {timeout:g} s{tried}",
                hint="raise the setting `request_timeout_s` (env LADDER_REQUEST_TIMEOUT_S or ladder.yaml) "
                "or check that the server is not overloaded",
            )
        if isinstance(exc, openai.APIConnectionError):
            return BackendError(
                f"cannot reach {url}: connection refused/failed{tried}",
                hint="check that the server is running and that the base URL (host, port, /v1) "
                "is right (setting `openai_base_url`)",
            )
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return BackendError(
                f"{url} refused the API key (HTTP {exc.status_code}): {_server_message(exc)}",
                hint="set the right key with the setting `openai_api_key` "
                "(env LADDER_OPENAI_API_KEY or OPENAI_API_KEY)",
            )
        if isinstance(exc, openai.NotFoundError):
            return ModelNotFoundError(
                f"{url} does not serve model {self.model!r}: {_server_message(exc)}", hint=self._models_hint()
            )
        if isinstance(exc, openai.APIStatusError):
            message = _server_message(exc)
            if exc.status_code == 400 and "context length" in message.lower():
                return ContextOverflowError(
                    f"the prompt is too long for {self.model!r} at {url}: {message}",
                    hint="shorten the prompt (fewer few-shot examples or retrieved chunks) "
                    "or lower max_new_tokens",
                )
            hint = (
                f"the server was still failing{tried}; raise `max_retries` or check the server"
                if exc.status_code >= 500 or exc.status_code == 429
                else None
            )
            return BackendError(f"{url} answered HTTP {exc.status_code}: {message}", hint=hint)
        return BackendError(f"{url}: unexpected reply from the endpoint: {exc}")

    def _models_hint(self) -> str:
        try:
            timeout = min(5.0, self.settings.request_timeout_s)
            quick = self._client.with_options(max_retries=0, timeout=timeout)
            served = sorted(model.id for model in quick.models.list())
        except openai.OpenAIError:
            return "check the model name, and that the base URL ends in /v1"
        if not served:
            return "the endpoint lists no models"
        return f"models served there: {', '.join(served)}"
