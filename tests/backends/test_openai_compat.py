"""The openai_compat backend, driven over real HTTP against a scripted loopback server."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from assistant.backends.base import LLMBackend, backend_class
from assistant.backends.openai_compat import OpenAICompatBackend
from assistant.errors import BackendError, CapabilityError, ContextOverflowError, ModelNotFoundError
from assistant.settings import load_settings
from assistant.types import GenParams, Message, ToolCall, user
from tests.openai_server import FakeOpenAIServer, free_port, serve

Start = Callable[..., tuple[FakeOpenAIServer, str]]

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(**server_options)`` -> (server, base_url); every server stops at teardown."""
    with ExitStack() as stack:

        def _start(**options: Any) -> tuple[FakeOpenAIServer, str]:
            server = FakeOpenAIServer(**options)
            return server, stack.enter_context(serve(server.app))

        yield _start


def make_backend(
    base_url: str, model: str = "test-model", api_key: str | None = None, **flags: Any
) -> OpenAICompatBackend:
    settings = load_settings({"request_timeout_s": 2, "max_retries": 0, "max_concurrency": 4, **flags})
    return OpenAICompatBackend(model, base_url, api_key=api_key, settings=settings)


# -- generate -----------------------------------------------------------------------------


def test_registered_and_satisfies_protocol(start: Start) -> None:
    _, url = start()
    backend = make_backend(url)
    assert backend_class("openai_compat") is OpenAICompatBackend
    assert isinstance(backend, LLMBackend)
    assert backend.model_id == f"openai:test-model@{url}"


def test_answers_in_order_with_usage_and_bounded_concurrency(start: Start) -> None:
    server, url = start(delay_s=0.1)
    backend = make_backend(url, max_concurrency=3)
    backend.generate([user("warm up")], GenParams())  # the openai client's first call is slow
    prompts = [f"question number {i}" for i in range(8)]
    began = time.perf_counter()
    out = backend.generate([user(p) for p in prompts], GenParams())
    elapsed = time.perf_counter() - began

    assert [c.text for c in out] == [f"echo: question number {i}" for i in range(8)]
    assert [(c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.model_calls) for c in out] == [
        (3, 4, 1)
    ] * 8
    assert all(c.finish_reason == "stop" and c.model_id == backend.model_id for c in out)
    assert all(0.1 <= c.latency_s < 1.5 for c in out)
    assert len(server.chat_requests) == 9
    assert 1 < server.max_in_flight <= 3
    assert elapsed < 6 * 0.1  # not one at a time (three at a time takes about 0.3 s)


def test_single_request_runs_without_pool(start: Start) -> None:
    server, url = start(replies=["Paris"])
    (completion,) = make_backend(url).generate([user("Capital of France?")], GenParams())
    assert completion.text == "Paris"
    assert server.chat_requests[0]["messages"] == [{"role": "user", "content": "Capital of France?"}]


def test_params_and_messages_are_forwarded(start: Start) -> None:
    server, url = start(replies=["ok"])
    conversation = [
        Message("system", "Be brief."),
        Message("user", "What is 2+2?"),
        Message("assistant", "", tool_calls=[ToolCall("calculator", {"expression": "2+2"}, "call_7")]),
        Message("tool", "4", tool_call_id="call_7", name="calculator"),
    ]
    params = GenParams(
        max_new_tokens=17,
        temperature=0.7,
        top_p=0.9,
        seed=42,
        stop=("\n\n", "END", "###", "Q:", "A:"),
        tools=(CALCULATOR,),
    )
    make_backend(url).generate([conversation], params)

    body = server.chat_requests[0]
    assert body["model"] == "test-model"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (17, 0.7, 0.9, 42)
    assert body["stop"] == ["\n\n", "END", "###", "Q:"]  # the API takes four at most
    assert body["tools"] == [CALCULATOR]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'},
                }
            ],
        },
        {"role": "tool", "content": "4", "tool_call_id": "call_7"},
    ]


def test_optional_params_are_left_out(start: Start) -> None:
    server, url = start()
    make_backend(url).generate([user("hi")], GenParams())
    body = server.chat_requests[0]
    assert "seed" not in body and "stop" not in body and "tools" not in body
    assert (body["max_tokens"], body["temperature"]) == (256, 0.0)


def test_length_finish_reason_passes_through(start: Start) -> None:
    _, url = start(replies=["one two three four five six"])
    (completion,) = make_backend(url).generate([user("count")], GenParams(max_new_tokens=3))
    assert (completion.text, completion.finish_reason) == ("one two three", "length")
    assert completion.usage.completion_tokens == 3


def test_stop_is_applied_client_side_as_a_safety_net(start: Start) -> None:
    _, url = start(replies=["Paris END more", "a b c Z: tail"], honor_stop=False)
    backend = make_backend(url)
    first = backend.generate([user("q")], GenParams(stop=("END",)))[0]
    assert (first.text, first.finish_reason) == ("Paris ", "stop")
    # The fifth stop sequence is never sent to the server; only the client can apply it.
    fifth = backend.generate([user("q")], GenParams(stop=("1", "2", "3", "4", "Z:")))[0]
    assert fifth.text == "a b c "


def test_tool_calls_are_parsed(start: Start) -> None:
    _, url = start(
        replies=[
            {
                "content": "",
                "tool_calls": [
                    {"name": "calculator", "arguments": {"expression": "6*7"}, "id": "call_a"},
                    {"name": "search", "arguments": "{not json", "id": "call_b"},
                    {"name": "now", "arguments": "", "id": "call_c"},
                ],
            }
        ]
    )
    (completion,) = make_backend(url).generate([user("6*7?")], GenParams(tools=(CALCULATOR,)))
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == [
        ToolCall("calculator", {"expression": "6*7"}, "call_a"),
        ToolCall("search", {"_raw": "{not json"}, "call_b"),
        ToolCall("now", {}, "call_c"),
    ]


def test_missing_usage_counts_as_zero(start: Start) -> None:
    _, url = start(replies=["fine"], usage=False)
    (completion,) = make_backend(url).generate([user("hi there")], GenParams())
    assert completion.text == "fine"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (0, 0)
    assert completion.usage.model_calls == 1


# -- errors -------------------------------------------------------------------------------


def test_retries_after_503_then_succeeds(start: Start) -> None:
    server, url = start(failures=[503, 503], replies=["recovered"])
    (completion,) = make_backend(url, max_retries=2).generate([user("hi")], GenParams())
    assert completion.text == "recovered"
    assert len(server.chat_requests) == 3


def test_retries_exhausted_raise_backend_error(start: Start) -> None:
    server, url = start(failures=[503, 503, 503, 503])
    with pytest.raises(BackendError) as info:
        make_backend(url, max_retries=2).generate([user("hi")], GenParams())
    assert "HTTP 503" in info.value.message
    assert "scripted failure (503)" in info.value.message
    assert info.value.hint is not None and "max_retries" in info.value.hint
    assert len(server.chat_requests) == 3


def test_connection_refused_fails_fast() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    began = time.perf_counter()
    with pytest.raises(BackendError) as info:
        make_backend(url).generate([user("hi")], GenParams())
    assert time.perf_counter() - began < 1.0
    assert info.value.message.startswith(f"cannot reach {url}")
    assert info.value.hint is not None and "base URL" in info.value.hint
    assert not isinstance(info.value.__cause__, openai.OpenAIError)


def test_timeout_names_the_setting(start: Start) -> None:
    _, url = start(delay_s=1.0)
    began = time.perf_counter()
    with pytest.raises(BackendError) as info:
        make_backend(url, request_timeout_s=0.2).generate([user("slow")], GenParams())
    assert time.perf_counter() - began < 0.9
    assert "within 0.2 s" in info.value.message
    assert "cannot reach" not in info.value.message
    assert info.value.hint is not None and "request_timeout_s" in info.value.hint


def test_bad_api_key(start: Start) -> None:
    server, url = start(api_key="sk-right")
    with pytest.raises(BackendError) as info:
        make_backend(url, api_key="sk-wrong").generate([user("hi")], GenParams())
    assert "API key" in info.value.message and "401" in info.value.message
    assert info.value.hint is not None
    assert "openai_api_key" in info.value.hint and "LADDER_OPENAI_API_KEY" in info.value.hint
    # The key from the settings is used when none is passed.
    ok = make_backend(url, openai_api_key="sk-right").generate([user("hi")], GenParams())
    assert ok[0].text == "echo: hi"
    assert server.received[-1].headers["authorization"] == "Bearer sk-right"


def test_no_key_sends_placeholder(start: Start) -> None:
    server, url = start()
    make_backend(url).generate([user("hi")], GenParams())
    assert server.received[0].headers["authorization"] == "Bearer EMPTY"


def test_unknown_model_lists_served_models(start: Start) -> None:
    _, url = start(models=["qwen-small", "qwen-big"])
    with pytest.raises(ModelNotFoundError) as info:
        make_backend(url, model="gpt-x").generate([user("hi")], GenParams())
    assert "does not serve model 'gpt-x'" in info.value.message
    assert info.value.hint == "models served there: qwen-big, qwen-small"


def test_context_overflow_and_other_status_errors(start: Start) -> None:
    _, url = start(
        failures=[
            (400, "This model's maximum context length is 2048 tokens. However, you requested 4000 tokens."),
            (422, "field 'top_p' is invalid"),
        ]
    )
    backend = make_backend(url)
    with pytest.raises(ContextOverflowError) as overflow:
        backend.generate([user("long")], GenParams())
    assert "2048" in overflow.value.message
    with pytest.raises(BackendError) as other:
        backend.generate([user("x")], GenParams())
    assert other.value.message == f"{url} answered HTTP 422: field 'top_p' is invalid"


def test_error_in_a_batch_is_raised(start: Start) -> None:
    _, url = start(replies=lambda body: "ok", failures=[(418, "teapot")], delay_s=0.05)
    with pytest.raises(BackendError, match="HTTP 418: teapot"):
        make_backend(url).generate([user(str(i)) for i in range(4)], GenParams())


def test_list_models(start: Start) -> None:
    _, url = start(models=["b-model", "a-model"])
    assert make_backend(url).list_models() == ["a-model", "b-model"]
    with pytest.raises(BackendError, match="cannot reach"):
        make_backend(f"http://127.0.0.1:{free_port()}/v1").list_models()


# -- score_choices ------------------------------------------------------------------------


def test_score_choices_from_top_logprobs(start: Start) -> None:
    tables = {
        "q1": {"A": -0.1, " A": -3.0, "B": -2.5, "C": -4.0},
        "q2": {"B": -0.2, "C": -1.9},
    }
    server, url = start(logprobs=lambda body: tables[body["messages"][0]["content"]])
    scores = make_backend(url).score_choices(["q1", "q2"], ["A", "B", " C ", "D"])

    a = math.log(math.exp(-0.1) + math.exp(-3.0))  # "A" and " A" are the same answer
    assert scores[0][0] == pytest.approx(a)
    assert scores[0][1:3] == [-2.5, -4.0]
    assert scores[1][:3] == [float("-inf"), -0.2, -1.9]
    assert scores[0][3] == scores[1][3] == float("-inf")
    body = server.chat_requests[0]
    assert (body["max_tokens"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (
        1,
        0.0,
        True,
        20,
    )


def test_score_choices_without_logprobs(start: Start) -> None:
    _, url = start()  # ignores the logprobs parameter, like many servers
    with pytest.raises(CapabilityError) as info:
        make_backend(url).score_choices(["q"], ["A", "B"])
    assert "gives no logprobs" in info.value.message
    assert info.value.hint is not None and "generate-mode MCQ" in info.value.hint


def test_score_choices_when_logprobs_are_rejected(start: Start) -> None:
    _, url = start(reject_logprobs=True)
    with pytest.raises(CapabilityError) as info:
        make_backend(url).score_choices(["q"], ["A", "B"])
    assert "gives no logprobs" in info.value.message and "not supported" in info.value.message


def test_score_choices_refuses_multi_token_choices(start: Start) -> None:
    server, url = start(logprobs={"A": -0.1})
    backend = make_backend(url)
    for choices in (["Paris", "New York"], ["A", "Constantinople"], ["A", ""]):
        with pytest.raises(CapabilityError, match="single-token choices"):
            backend.score_choices(["q"], choices)
    assert server.chat_requests == []


# -- LangChain ----------------------------------------------------------------------------


def test_chat_model_invoke(start: Start) -> None:
    _, url = start(replies=["Bonjour tout le monde"])
    message = make_backend(url).chat_model().invoke([HumanMessage("Say hello in French")])
    assert isinstance(message, AIMessage)
    assert message.content == "Bonjour tout le monde"
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 4
    assert message.usage_metadata["output_tokens"] == 4
    assert message.response_metadata["model_name"] == f"openai:test-model@{url}"


def test_chat_model_tool_calls(start: Start) -> None:
    server, url = start(
        replies=[{"tool_calls": [{"name": "calculator", "arguments": {"expression": "1+1"}, "id": "call_x"}]}]
    )
    bound = make_backend(url).chat_model().bind_tools([CALCULATOR])
    message = bound.invoke("What is 1+1?")
    assert message.tool_calls == [
        {"name": "calculator", "args": {"expression": "1+1"}, "id": "call_x", "type": "tool_call"}
    ]
    assert server.chat_requests[0]["tools"][0]["function"]["name"] == "calculator"


# -- the test server's streaming mode (reused by `ladder serve` tests) ---------------------


def test_test_server_streams_sse(start: Start) -> None:
    _, url = start(replies=["streamed reply here"])
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=2)
    stream = client.chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "one two"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed reply here"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_raw_scoring_on_a_chat_only_endpoint_is_a_capability_error(start: Start) -> None:
    server, url = start(logprobs={"A": -0.1})
    with pytest.raises(CapabilityError) as info:
        make_backend(url).score_choices(["q"], ["A", "B"], chat_template=False)
    assert (
        "no /v1/completions route" in info.value.message
        and info.value.hint is not None
        and "chat_template: true" in info.value.hint
    )
    assert server.chat_requests == []  # the chat endpoint is never asked
