"""Model names, keys and the bind rule; ``ladder serve`` as a command and as a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.knowledge import KnowledgeBase
from assistant.settings import Settings, load_settings
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.server.helpers import client
from ui.server.config import (
    UNKNOWN_MODEL,
    ServerConfig,
    hash_key,
    is_loopback,
    model_names,
    parse_key_hashes,
    resolve_model,
    server_config,
)

ROOT = Path(__file__).resolve().parents[2]


def test_model_names_map_to_strategy_configs(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "nl2sql.yaml").write_text("strategy: reflection\ncheck: sql\ndatabase: shop.db\n")
    models = tmp_path / "models.yaml"
    models.write_text("bot:\n  strategy: rag\n  kb: handbook\nsql: nl2sql.yaml\n")
    settings.server_models = models
    settings.server_allowed_models = " smollm2-135m , fake:replies.json,smollm2-135m"
    for kb in ("handbook", "kb2"):
        KnowledgeBase.create(kb, settings).close()
    config = server_config(settings, model="fake")
    assert config.allowed_models == ["smollm2-135m", "fake:replies.json"]
    assert resolve_model("rag:handbook", config, settings) == {
        "strategy": "rag",
        "kb": "handbook",
        "model": "fake",
    }
    assert resolve_model("agent:kb2", config, settings)["kb"] == "kb2"
    assert resolve_model("reflection", config, settings) == {"strategy": "reflection", "model": "fake"}
    assert resolve_model("fake", config, settings) == {"strategy": "prompt", "model": "fake"}
    assert resolve_model(" smollm2-135m", config, settings) == {"strategy": "prompt", "model": "smollm2-135m"}
    assert resolve_model("bot", config, settings) == {"model": "fake", "strategy": "rag", "kb": "handbook"}
    assert resolve_model("sql", config, settings)["check"] == "sql"
    assert model_names(config, settings) == [
        "bot", "sql", "prompt", "reflection", "agent", "rag:handbook", "agent:handbook",
        "rag:kb2", "agent:kb2", "fake", "smollm2-135m", "fake:replies.json",
    ]  # fmt: skip
    # Not offered: one message for all, naming neither the request nor a path.
    for name in ("gpt-4o", "prompt:handbook", "rag:kb3", "fewshot", "smollm2-135m+nope",
                 "qwen2.5-coder-0.5b", "fake:other.json", "openai:gpt-4o@http://127.0.0.1:9/v1"):  # fmt: skip
        with pytest.raises(ModelNotFoundError) as refused:
            resolve_model(name, config, settings)
        assert str(refused.value) == UNKNOWN_MODEL, name


def test_a_knowledge_base_deleted_after_it_was_offered_is_the_same_404(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.server.app import Server

    monkeypatch.setattr(KnowledgeBase, "list_all", staticmethod(lambda _settings: ["ghost"]))
    server = Server(settings, server_config(settings, model="fake"))
    with pytest.raises(ModelNotFoundError) as refused:
        server.strategy("rag:ghost", {})
    assert str(refused.value) == UNKNOWN_MODEL and str(settings.home) not in str(refused.value)


def test_keys_are_kept_as_hashes_and_checked(settings: Settings) -> None:
    settings.server_api_key_hashes = hash_key("from-settings")
    config = server_config(settings, api_keys=["from-flag"])
    assert all(h.startswith("sha256:") and len(h) == 71 for h in config.key_hashes)
    assert "from-flag" not in repr(config) and "from-settings" not in repr(config)
    assert config.key_ok("from-flag") and config.key_ok("from-settings")
    assert not config.key_ok("from-flag ") and not config.key_ok(None) and not config.key_ok("")
    assert ServerConfig().key_ok(None), "no key configured: open (loopback only, see check_bind)"
    with pytest.raises(ConfigError, match="not a sha256"):
        parse_key_hashes("plain-text-key")


def test_no_key_on_a_reachable_address_is_refused_unless_asked_for() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    ServerConfig(host="127.0.0.1").check_bind()
    with pytest.raises(ConfigError, match="without an API key"):
        ServerConfig(host="0.0.0.0").check_bind()
    ServerConfig(host="0.0.0.0", key_hashes=[hash_key("k")]).check_bind()
    ServerConfig(host="0.0.0.0", allow_no_auth=True).check_bind()


def test_serve_cli_refusals_and_new_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["serve", "--host", "0.0.0.0", "--model", "fake"], capsys)
    assert code == 2 and "without an API key" in err and "--insecure-no-auth" in err
    code, _, err = run(["serve", "--model", "no-such-model", "--port", "1"], capsys)
    assert code == 3 and "unknown model" in err
    code, _, err = run(["serve", "--model", "fake", "--allow-model", "no-such-pack", "--port", "1"], capsys)
    assert code == 3 and "unknown model 'no-such-pack'" in err
    code, out, _ = run(["serve", "--new-key"], capsys)
    key = out.split("not stored): ")[1].split()[0]
    assert code == 0 and f"server_api_key_hashes: {hash_key(key)}" in out
    settings = load_settings({"server_api_key_hashes": hash_key(key)})
    assert server_config(settings).key_ok(key)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ladder_serve_process_answers_the_openai_client(isolated_home: Path) -> None:
    import openai

    port = _free_port()
    env = {**os.environ, "LADDER_SERVE_API_KEY": "proc-key", "LADDER_HOME": str(isolated_home)}
    command = [sys.executable, "-m", "ui.cli.app", "serve", "--model", "fake", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = client(url, key="proc-key").chat.completions.create(
                    model="prompt", messages=[{"role": "user", "content": "ping"}]
                )
                break
            except openai.APIConnectionError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.monotonic() < deadline, "ladder serve did not start"
                time.sleep(0.3)
        assert reply.choices[0].message.content == "[fake] ping"
        with pytest.raises(openai.AuthenticationError):
            client(url, key="other").models.list()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode in (0, -15)


def test_serve_help_imports_nothing_heavy() -> None:
    from tests.cli_helpers import heavy_modules_after

    out = heavy_modules_after([["--help"], ["serve", "--help"]], ("torch", "fastapi", "uvicorn", "openai"))
    assert "HEAVY []" in out and "--insecure-no-auth" in out, out
