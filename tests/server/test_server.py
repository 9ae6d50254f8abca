"""``ladder serve`` through the official ``openai`` client: models, completions, streaming,
the API key, the body limit, the bounded queue, feedback, and error statuses."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import BackendError
from assistant.settings import Settings
from tests.server.helpers import KEY, client


def test_models_lists_strategies_named_configs_and_the_server_model(
    start: Any, settings: Settings, tmp_path: Path
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("support-bot:\n  strategy: prompt\n  system_prompt: You are the support desk.\n")
    settings.server_models = models
    with start() as (url, _server):
        ids = [m.id for m in client(url).models.list()]
    assert ids[0] == "support-bot"
    assert {"prompt", "reflection", "agent", "fake"} <= set(ids)


def test_completion_answers_through_the_strategy_with_usage_and_extras(start: Any) -> None:
    with start() as (url, _server):
        reply = client(url).chat.completions.create(
            model="prompt", messages=[{"role": "user", "content": "What is <b>Ladder</b>?"}]
        )
    assert reply.choices[0].message.content == "[fake] What is <b>Ladder</b>?"  # returned as text, never run
    assert reply.choices[0].finish_reason == "stop" and reply.model == "prompt"
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.usage is not None and reply.usage.completion_tokens == 4 and reply.usage.prompt_tokens == 3
    extra = reply.model_extra or {}
    assert extra["citations"] == [] and extra["ladder"]["strategy"] == "prompt"
    assert extra["ladder"]["backend_model"] == "fake" and extra["ladder"]["model_calls"] == 1


def test_request_settings_reach_the_backend(start: Any) -> None:
    fake = FakeBackend(["one two three four five six"])
    with start(backend=fake) as (url, _server):
        reply = client(url).chat.completions.create(
            model="prompt",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Count"},
            ],
            max_tokens=3,
            temperature=0.5,
            seed=7,
        )
    conversation, params = fake.calls[0]
    assert (params.max_new_tokens, params.temperature, params.seed) == (3, 0.5, 7)
    assert conversation[0].role == "system" and conversation[0].content == "Be brief."
    assert "User: Hi\nAssistant: Hello!" in conversation[-1].content and conversation[-1].content.endswith(
        "Count"
    )
    assert reply.choices[0].message.content == "one two three" and reply.choices[0].finish_reason == "length"


def test_streaming_sends_openai_chunks_and_the_citations_last(start: Any) -> None:
    with start() as (url, _server):
        stream = client(url).chat.completions.create(
            model="prompt",
            messages=[{"role": "user", "content": "你好，世界"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[fake] 你好，世界"
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert (finish[0].model_extra or {})["citations"] == []
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_without_the_key_every_path_is_401(start: Any) -> None:
    with start() as (url, _server):
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong").models.list()
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong").chat.completions.create(
                model="prompt", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        for method, path in (("GET", "/models"), ("POST", "/chat/completions"), ("POST", "/feedback"),
                             ("GET", "/nothing-here"), ("GET", "/../docs")):  # fmt: skip
            response = httpx.request(method, url + path, json={})
            assert response.status_code == 401, (path, response.text)
            assert response.json()["error"]["code"] == "invalid_api_key"
        ok = httpx.get(url + "/models", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200


def test_a_body_over_the_limit_is_413_declared_or_chunked(start: Any) -> None:
    with start(max_request_bytes=4096) as (url, _server):
        with pytest.raises(openai.APIStatusError) as info:
            client(url).chat.completions.create(
                model="prompt", messages=[{"role": "user", "content": "x" * 5000}]
            )
        assert info.value.status_code == 413

        def chunked() -> Any:
            yield b'{"model": "prompt", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}]}'

        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        response = httpx.post(url + "/chat/completions", content=chunked(), headers=headers)
        assert response.status_code == 413, response.text
        small = client(url).chat.completions.create(
            model="prompt", messages=[{"role": "user", "content": "ok"}]
        )
        assert small.choices[0].message.content == "[fake] ok"


def test_a_full_queue_answers_429_and_the_queued_requests_still_finish(start: Any) -> None:
    slow = FakeBackend(delay_s=1.5)
    results: list[Any] = []

    def ask(url: str, text: str) -> None:
        reply = client(url).chat.completions.create(
            model="prompt", messages=[{"role": "user", "content": text}]
        )
        results.append(reply.choices[0].message.content)

    with start(backend=slow, queue_size=1) as (url, server):
        threads = [threading.Thread(target=ask, args=(url, f"q{i}")) for i in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while server.worker.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.worker.pending == 2, "one running, one waiting"
        with pytest.raises(openai.RateLimitError) as info:
            client(url).chat.completions.create(model="prompt", messages=[{"role": "user", "content": "q2"}])
        assert info.value.response.headers["retry-after"] == "1"
        with pytest.raises(openai.RateLimitError):  # a stream is refused before it starts
            client(url).chat.completions.create(
                model="prompt", messages=[{"role": "user", "content": "q3"}], stream=True
            )
        for thread in threads:
            thread.join(timeout=10)
    assert sorted(results) == ["[fake] q0", "[fake] q1"]
    assert [conv[-1].content for conv, _ in slow.calls] == ["q0", "q1"], "one at a time, in order"


def test_bad_requests_are_400_and_unknown_models_404(start: Any) -> None:
    with start() as (url, _server):
        api = client(url)
        with pytest.raises(openai.NotFoundError, match="unknown model"):
            api.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.NotFoundError):
            api.chat.completions.create(model="prompt:kb", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError, match="last message must be the user"):
            api.chat.completions.create(model="prompt", messages=[{"role": "assistant", "content": "hi"}])
        with pytest.raises(openai.BadRequestError, match="temperature"):
            api.chat.completions.create(
                model="prompt", messages=[{"role": "user", "content": "hi"}], temperature=-1
            )
        with pytest.raises(openai.BadRequestError, match="n=2"):
            api.chat.completions.create(model="prompt", messages=[{"role": "user", "content": "hi"}], n=2)
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        broken = httpx.post(url + "/chat/completions", content=b"{not json", headers=headers)
        assert broken.status_code == 400 and "error" in broken.json()


def test_feedback_by_completion_id_is_stored_with_the_answer(start: Any, settings: Settings) -> None:
    from assistant.feedback import get_feedback, list_feedback

    with start() as (url, _server):
        api = client(url)
        reply = api.chat.completions.create(
            model="prompt",
            messages=[{"role": "user", "content": "Return window?"}],
            extra_body={"session_id": "s9"},
        )
        body = {"completion_id": reply.id, "rating": "down", "correction": "30 days", "comment": "wrong"}
        stored = api.post("/feedback", body=body, cast_to=httpx.Response).json()
        assert stored["object"] == "feedback" and stored["status"] == "new"
        item = get_feedback(settings, stored["id"])
        assert (item.question, item.answer, item.rating) == (
            "Return window?",
            "[fake] Return window?",
            "down",
        )
        assert (item.model, item.strategy, item.session_id) == ("prompt", "prompt", "s9")
        assert (item.correction, item.comment, item.source) == ("30 days", "wrong", "api")
        headers = {"Authorization": f"Bearer {KEY}"}
        unknown = httpx.post(
            url + "/feedback", json={"completion_id": "chatcmpl-x", "rating": "up"}, headers=headers
        )
        assert unknown.status_code == 400 and "unknown completion_id" in unknown.json()["error"]["message"]
        explicit = httpx.post(
            url + "/feedback", json={"question": "Q?", "answer": "A", "rating": 1}, headers=headers
        )
        assert explicit.status_code == 200
        bad = httpx.post(
            url + "/feedback", json={"question": "Q?", "answer": "A", "rating": "meh"}, headers=headers
        )
        assert bad.status_code == 400 and "rating" in bad.json()["error"]["message"]
    assert [i.rating for i in list_feedback(settings)] == ["up", "down"]


def test_a_response_is_json_the_client_parses_even_with_markup(start: Any) -> None:
    fake = FakeBackend(['<script>alert("x")</script> & "quotes"'])
    with start(backend=fake) as (url, _server):
        headers = {"Authorization": f"Bearer {KEY}"}
        body = {"model": "prompt", "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(url + "/chat/completions", json=body, headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert (
        json.loads(response.text)["choices"][0]["message"]["content"]
        == '<script>alert("x")</script> & "quotes"'
    )


def test_a_missing_knowledge_base_is_404_before_a_stream_starts(start: Any, settings: Settings) -> None:
    with start() as (url, _server):
        api = client(url)
        with pytest.raises(openai.NotFoundError, match="unknown model") as plain:
            api.chat.completions.create(model="rag:nokb", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.NotFoundError, match="unknown model") as streamed:
            api.chat.completions.create(
                model="rag:nokb", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        for refused in (plain.value, streamed.value):
            assert str(settings.home) not in refused.response.text, "no server path in the error"
        ok = api.chat.completions.create(model="prompt", messages=[{"role": "user", "content": "still up"}])
        assert ok.choices[0].message.content == "[fake] still up"


class FailingOnce(FakeBackend):
    """Fails its first ``failures`` calls the way an unreachable upstream does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def generate(self, batch: Any, params: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise BackendError("upstream http://10.0.0.7:8000/v1 said: key sk-abc rejected")
        return super().generate(batch, params)


def test_a_failing_backend_is_502_or_an_error_event_without_its_details(start: Any) -> None:
    with start(backend=FailingOnce(2)) as (url, _server):
        api = client(url)
        with pytest.raises(openai.APIStatusError, match="the model backend failed") as plain:
            api.chat.completions.create(model="prompt", messages=[{"role": "user", "content": "hi"}])
        assert plain.value.status_code == 502
        stream = api.chat.completions.create(
            model="prompt", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError, match="the model backend failed") as streamed:
            list(stream)
        for failed in (plain.value, streamed.value):
            assert "10.0.0.7" not in str(failed) and "sk-abc" not in str(failed)
        ok = api.chat.completions.create(model="prompt", messages=[{"role": "user", "content": "still up"}])
        assert ok.choices[0].message.content == "[fake] still up", "the worker survives a failed job"
