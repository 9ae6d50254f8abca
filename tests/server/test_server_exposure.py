"""Exploits against ``ladder serve``: a request may only name the models the server offers.

A request's ``model`` used to be parsed as a model reference, so a client could make the
server connect to any URL with the operator's upstream key (``openai:<m>@<url>``), read JSON
files on the server (``fake:<path>``), probe which paths exist (folders, adapters), or learn
server paths from error messages. Every one of these must answer the same 404, built before
any backend, and ``/v1/models`` must list exactly what the server answers for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from assistant.knowledge import KnowledgeBase
from assistant.settings import Settings
from tests.openai_server import FakeOpenAIServer, serve
from tests.server.helpers import KEY, client

OPERATOR_KEY = "sk-operator-upstream-secret-42"
SECRET = "TOP-SECRET launch code 0000"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def _post(url: str, model: str, stream: bool = False, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **extra}
    return httpx.post(url + "/chat/completions", json=body, headers=HEADERS, timeout=30)


def _unknown_body(url: str) -> bytes:
    """The 404 body for a name that is nothing at all: every refusal must look like it."""
    reference = _post(url, "no-such-model")
    assert reference.status_code == 404
    assert reference.json()["error"]["type"] == "not_found_error"
    return reference.content


def test_a_client_named_endpoint_is_refused_and_never_contacted(start: Any, settings: Settings) -> None:
    settings.openai_api_key = OPERATOR_KEY
    upstream = FakeOpenAIServer(replies=["from the attacker's server"], models=("x", "gpt-4o"))
    with serve(upstream.app) as upstream_url:
        settings.openai_base_url = upstream_url  # even the operator's own endpoint is not a model name
        with start() as (url, _server):
            unknown = _unknown_body(url)
            for model in (f"openai:x@{upstream_url}", f"openai:x@{upstream_url}/", "openai:gpt-4o"):
                for stream in (False, True):
                    response = _post(url, model, stream=stream)
                    assert response.status_code == 404, (model, stream, response.text)
                    assert response.content == unknown, (model, response.text)
                    assert OPERATOR_KEY not in response.text and upstream_url not in response.text
            listed = httpx.get(url + "/models", headers=HEADERS).text
    assert upstream.received == [], "the server connected to a URL the client named"
    assert OPERATOR_KEY not in listed


def test_fake_script_paths_are_refused_without_reading_the_file(
    start: Any, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps([SECRET]), encoding="utf-8")
    with start() as (url, _server):
        unknown = _unknown_body(url)
        for model in (f"fake:{secret}", f"fake:{secret.name}", f"  fake:{secret}  "):
            for stream in (False, True):
                response = _post(url, model, stream=stream)
                assert response.status_code == 404, (model, response.text)
                assert SECRET not in response.text and "TOP-SECRET" not in response.text
                assert response.content == unknown


def test_existing_and_missing_paths_give_identical_404s(
    start: Any, settings: Settings, tmp_path: Path
) -> None:
    """No existence oracle: a file, a folder, a model-like folder and an adapter-like folder
    answer byte for byte what a path that does not exist answers."""
    (tmp_path / "notes.json").write_text("[]", encoding="utf-8")
    (tmp_path / "plain-dir").mkdir()
    model_dir = tmp_path / "model-dir"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}", encoding="utf-8")
    adapter = tmp_path / "adapter-dir"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    strategy_yaml = tmp_path / "strategy.yaml"
    strategy_yaml.write_text("strategy: prompt\n", encoding="utf-8")
    missing = tmp_path / "does-not-exist"
    with start() as (url, _server):
        unknown = _unknown_body(url)
        pairs = [
            (f"fake:{tmp_path / 'notes.json'}", f"fake:{missing}.json"),
            (str(tmp_path / "plain-dir"), str(missing)),
            (str(model_dir), str(missing)),
            (f"fake+{adapter}", f"fake+{missing}"),  # an adapter on the server's own fake model
            (str(strategy_yaml), f"{missing}.yaml"),
            ("./plain-dir", "./nothing-here"),  # relative to the server's folder
        ]
        for existing, absent in pairs:
            seen = _post(url, existing)
            not_seen = _post(url, absent)
            assert (seen.status_code, not_seen.status_code) == (404, 404), (existing, seen.text)
            assert seen.content == not_seen.content == unknown, (existing, seen.text, not_seen.text)
            assert str(tmp_path) not in seen.text


def test_strategy_and_knowledge_base_names_are_checked_too(
    start: Any, settings: Settings, tmp_path: Path
) -> None:
    """``<strategy>:<kb>``, a bare strategy that needs configuring, and fields a client might hope
    pick a strategy, knowledge base, adapter or endpoint: nothing reaches a backend or a path."""
    settings.openai_api_key = OPERATOR_KEY
    KnowledgeBase.create("handbook", settings).close()
    upstream = FakeOpenAIServer()
    secret = tmp_path / "examples.json"
    secret.write_text(json.dumps([{"question": SECRET, "answer": SECRET}]), encoding="utf-8")
    with serve(upstream.app) as upstream_url, start() as (url, _server):
        unknown = _unknown_body(url)
        for model in ("rag:nokb", "agent:nokb", "rag:../ladder_home/kb/handbook", "agent:/tmp",
                      "prompt:handbook", "reflection:handbook", "rag", "fewshot", "rag:handbook+x",
                      "nokb", "rag:", f"agent:handbook@{upstream_url}"):  # fmt: skip
            response = _post(url, model)
            assert response.status_code == 404, (model, response.text)
            assert response.content == unknown, (model, response.text)
            assert str(settings.home) not in response.text and str(tmp_path) not in response.text
        hopeful = {
            "strategy": "rag",
            "kb": "handbook",
            "adapter": str(tmp_path),
            "examples_file": str(secret),
            "database": str(secret),
            "base_url": upstream_url,
            "openai_base_url": upstream_url,
            "model_ref": f"openai:x@{upstream_url}",
            "config": str(secret),
        }
        reply = _post(url, "prompt", **hopeful)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "[fake] hi"
    assert reply.json()["ladder"]["strategy"] == "prompt" and SECRET not in reply.text
    assert upstream.received == []


def test_models_lists_exactly_what_the_server_answers_for(
    start: Any, settings: Settings, tmp_path: Path
) -> None:
    KnowledgeBase.create("handbook", settings).close()
    models = tmp_path / "models.yaml"
    models.write_text("support-bot:\n  strategy: prompt\n  system_prompt: You are the desk.\n")
    settings.server_models = models
    script = tmp_path / "second.json"
    script.write_text(json.dumps({"default": "second model"}), encoding="utf-8")
    settings.server_allowed_models = f"fake:{script}"
    with start() as (url, _server):
        ids = [m.id for m in client(url).models.list()]
        assert ids == [
            "support-bot",
            "prompt",
            "reflection",
            "agent",
            "rag:handbook",
            "agent:handbook",
            "fake",
            f"fake:{script}",
        ]
        for name in ids:
            if name == "rag:handbook":  # an empty knowledge base: answers "not found"
                continue
            response = _post(url, name)
            assert response.status_code == 200, (name, response.text)
        assert _post(url, f"fake:{script}").json()["choices"][0]["message"]["content"] == "second model"
        assert _post(url, "rag:handbook").json()["ladder"]["strategy"] == "rag"


def test_feedback_refuses_hostile_fields(start: Any, settings: Settings) -> None:
    from assistant.feedback import list_feedback

    with start() as (url, _server):
        unknown = _unknown_body(url)
        base = {"question": "Q?", "answer": "A", "rating": "up"}
        hostile = httpx.post(
            url + "/feedback", json={**base, "model": "openai:x@http://127.0.0.1:9/v1"}, headers=HEADERS
        )
        assert hostile.status_code == 404 and hostile.content == unknown
        for field, value in (("completion_id", "c" * 500), ("session_id", "s" * 5000), ("model", "m" * 500)):
            response = httpx.post(url + "/feedback", json={**base, field: value}, headers=HEADERS)
            assert response.status_code == 400, (field, response.text)
            assert value not in response.text
        ok = httpx.post(url + "/feedback", json={**base, "model": "prompt"}, headers=HEADERS)
        assert ok.status_code == 200, ok.text
    assert [(item.model, item.question) for item in list_feedback(settings)] == [("prompt", "Q?")]


def test_the_backend_model_id_shows_no_server_path_or_upstream_address(start: Any) -> None:
    from assistant.backends.fake import FakeBackend

    for model_id, shown in (
        ("/srv/models/qwen+/srv/adapters/tickets", "qwen+tickets"),
        ("openai:gpt-4o@http://10.0.0.7:8000/v1", "openai:gpt-4o"),
        ("qwen2.5-coder-0.5b+tickets", "qwen2.5-coder-0.5b+tickets"),
    ):
        with start(backend=FakeBackend(model_id=model_id)) as (url, _server):
            reply = _post(url, "prompt")
        assert reply.json()["ladder"]["backend_model"] == shown
        assert "/srv" not in reply.text and "10.0.0.7" not in reply.text
