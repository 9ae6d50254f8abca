"""``ladder ui`` and ``ladder chat-ui``: the streamlit command they run (loopback, headless, no
usage statistics), the chat's configuration, the password stored hashed, nothing heavy imported."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import heavy_modules_after, run, wide_terminal  # noqa: F401  (autouse fixture)


def test_ui_runs_streamlit_on_loopback_without_telemetry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["ui", "--print-command", "--port", "8600"], capsys)
    assert code == 0
    assert out.split()[1:4] == ["-m", "streamlit", "run"] and out.split()[4].endswith("ui/web/app.py")
    assert "--server.address 127.0.0.1" in out and "--server.port 8600" in out
    assert "--browser.gatherUsageStats false" in out and "--server.headless true" in out
    assert "--server.maxUploadSize 50" in out  # the max_file_mb setting


def test_chat_ui_passes_its_strategy_and_refuses_rag_without_a_kb(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["chat-ui", "--print-command", "--kb", "handbook", "--adapter", "tickets"], capsys)
    assert code == 0
    assert "LADDER_CHAT_KB=handbook" in out and "LADDER_CHAT_STRATEGY=rag" in out
    assert "LADDER_MODEL=qwen2.5-coder-0.5b+tickets" in out and "ui/web/chat_app.py" in out
    code, _, err = run(["chat-ui", "--print-command"], capsys)
    assert code == 2 and "needs --kb (no knowledge base yet" in err


def test_chat_ui_answers_from_the_only_knowledge_base_unless_told(capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.settings import load_settings

    kb_dir = load_settings().kb_dir
    (kb_dir / "handbook").mkdir(parents=True)
    (kb_dir / "handbook" / "kb.json").write_text("{}", encoding="utf-8")
    code, out, _ = run(["chat-ui", "--print-command"], capsys)
    assert code == 0 and "LADDER_CHAT_KB=handbook" in out and "the only one" in out
    (kb_dir / "policies").mkdir()
    (kb_dir / "policies" / "kb.json").write_text("{}", encoding="utf-8")
    code, _, err = run(["chat-ui", "--print-command"], capsys)
    assert code == 2 and "knowledge bases: handbook, policies" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_password_set_stores_only_a_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.auth import verify_password

    (tmp_path / "ladder.yaml").write_text("threads: 2\n", encoding="utf-8")
    monkeypatch.setattr("sys.stdin", _Terminal())  # typed at the prompt, twice
    monkeypatch.setattr("typer.prompt", lambda *a, **k: "a long password")
    code, out, _ = run(["ui", "--password-set"], capsys)
    assert code == 0 and "scrypt hash" in out
    saved = yaml.safe_load((tmp_path / "ladder.yaml").read_text(encoding="utf-8"))
    assert saved["threads"] == 2 and verify_password("a long password", saved["ui_password_hash"])
    assert "a long password" not in (tmp_path / "ladder.yaml").read_text(encoding="utf-8")
    code, _, _ = run(["ui", "--password-clear"], capsys)
    assert "ui_password_hash" not in yaml.safe_load((tmp_path / "ladder.yaml").read_text(encoding="utf-8"))


def test_ui_commands_import_nothing_heavy() -> None:
    out = heavy_modules_after([["ui", "--help"], ["chat-ui", "--help"], ["ui", "--print-command"]])
    assert "HEAVY []" in out, out


def test_password_set_refuses_a_weak_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    weak_passwords = [
        ("aaaaaaaa", "at least 10 characters"),
        ("aaaaaaaaaaaa", "repeats itself"),
        ("1234567890", "a run of letters, digits or keys"),
        ("Password2024!", "common"),
    ]
    for weak, reason in weak_passwords:
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{weak}\n{weak}\n"))  # piped, twice
        code, _, err = run(["ui", "--password-set"], capsys)
        assert code == 2 and "the password is too weak" in err and reason in err, err
        assert not (tmp_path / "ladder.yaml").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\na long passphrasf\n"))
    code, _, err = run(["ui", "--password-set"], capsys)
    assert code == 2 and "the two passwords differ" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\na long passphrase"))  # no last newline
    code, _, _ = run(["ui", "--password-set"], capsys)
    assert code == 0 and (tmp_path / "ladder.yaml").exists()


def test_password_set_at_the_end_of_the_input_is_a_one_line_error(tmp_path: Path) -> None:
    """``ladder ui --password-set </dev/null`` (a script, CI): no traceback, exit 2, a hint."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    env.update(LADDER_HOME=str(tmp_path / "home"), COLUMNS="300")
    ladder = Path(sys.executable).with_name("ladder")
    for given in ("", "only the first line of it\n"):
        done = subprocess.run(
            [str(ladder), "ui", "--password-set"], input=given, capture_output=True, text=True,
            cwd=tmp_path, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "Abort" not in done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "hint:"))]
        assert (
            lines[0] == "error: no password was read: the input ended before the password and its repetition"
        )
        assert lines[1].startswith("hint: run `ladder ui --password-set` in a terminal")
        assert not (tmp_path / "ladder.yaml").exists()


@pytest.mark.parametrize("command", ["ui", "chat-ui"])
def test_binding_a_network_address_without_a_password_warns(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = ["--kb", "handbook"] if command == "chat-ui" else []
    code, _, err = run([command, "--print-command", "--host", "0.0.0.0", *extra], capsys)
    assert code == 0
    what = "chat" if command == "chat-ui" else "workbench"
    assert f"warning: binding 0.0.0.0 without a password: anyone who can reach it can use the {what}" in err
    code, _, err = run([command, "--print-command", *extra], capsys)  # loopback: no warning
    assert code == 0 and "warning" not in err
    from ui.auth import hash_password

    monkeypatch.setenv("LADDER_UI_PASSWORD_HASH", hash_password("correct horse"))
    code, _, err = run([command, "--print-command", "--host", "0.0.0.0", *extra], capsys)
    assert code == 0 and "warning" not in err


def _write_deployment(name: str, chosen: str | None) -> None:
    """A deployment manifest as ``ladder deploy`` writes it: a bf16 and a GGUF format."""
    import json

    from assistant.settings import load_settings

    folder = load_settings().home / "deployments" / name
    folder.mkdir(parents=True)
    formats = [
        {"format": "gguf-q4_k_m", "engine": "llama.cpp", "rank": 10, "model_ref": f"gguf:{folder}/m.gguf"},
        {
            "format": "transformers-bf16",
            "engine": "transformers",
            "rank": 30,
            "model_ref": str(folder / "bf16"),
            "settings": {"dtype": "bfloat16"},
        },
    ]
    manifest = {
        "name": name,
        "status": "met" if chosen else "missed",
        "chosen": chosen,
        "formats": formats,
        **dict.fromkeys(
            ("created", "decision_id", "decision_name", "rung", "source_model", "base_model"), "x"
        ),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_chat_ui_and_serve_answer_with_a_deployments_chosen_format(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--deployment NAME`` runs the chosen format with the settings it needs (bf16 -> dtype);
    one that chose nothing, or given beside --model, is a usage error."""
    from assistant.settings import load_settings

    _write_deployment("routing", "transformers-bf16")
    _write_deployment("nothing", None)
    code, out, _ = run(["chat-ui", "--print-command", "--kb", "h", "--deployment", "routing"], capsys)
    assert code == 0
    assert "LADDER_DTYPE=bfloat16" in out and "deployments/routing/bf16" in out
    code, _, err = run(["chat-ui", "--print-command", "--kb", "h", "--deployment", "nothing"], capsys)
    assert code == 2 and "chose no format" in err
    code, _, err = run(["chat-ui", "--print-command", "--kb", "h", "--deployment", "absent"], capsys)
    assert code == 2 and "no deployment named 'absent'" in err
    damaged = Path(str(load_settings().home)) / "deployments" / "nothing" / "manifest.json"
    damaged.write_text('{"name": "nothing"}', encoding="utf-8")
    code, _, err = run(["chat-ui", "--print-command", "--kb", "h", "--deployment", "nothing"], capsys)
    assert code == 2 and "is damaged" in err and "Traceback" not in err

    served: dict[str, object] = {}

    def fake_create_app(settings: object, server: object) -> str:
        served.update(model=getattr(server, "model", None), dtype=getattr(settings, "dtype", None))
        return "app"

    monkeypatch.setattr("ui.server.app.create_app", fake_create_app)
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: None)
    monkeypatch.setattr("assistant.models.refs.check_model_folder", lambda path: path)
    code, _, err = run(["serve", "--deployment", "routing", "--port", "0"], capsys)
    assert code == 0, err
    assert str(served["model"]).endswith("deployments/routing/bf16") and served["dtype"] == "bfloat16"
    code, _, err = run(["serve", "--deployment", "routing", "--model", "fake"], capsys)
    assert code == 2 and "not both" in err
