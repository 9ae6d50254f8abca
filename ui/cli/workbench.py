"""``ladder ui`` (the workbench) and ``ladder chat-ui`` (the end-user chat): start
``streamlit run`` on the right app, headless, without telemetry, bound to 127.0.0.1 unless
told otherwise. Both apps ask for the password ``ladder ui --password-set`` stores, and both
commands warn when they bind a network address without one. Importing this module imports
nothing heavy (streamlit loads in the child).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from assistant.errors import ConfigError
from ui.cli.common import (
    ConfigOpt,
    DeploymentOpt,
    HomeOpt,
    console,
    deployment_model,
    err_console,
    settings_from,
)

UI_DIR = Path(__file__).resolve().parents[1] / "web"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

HostOpt = Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to the network.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
PrintOpt = Annotated[
    bool, typer.Option("--print-command", help="Print the streamlit command instead of running it.")
]


def streamlit_command(app: Path, host: str, port: int, max_upload_mb: float) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.maxUploadSize", str(max(1, math.ceil(max_upload_mb))),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        "--client.showErrorDetails", "none",
        "--global.developmentMode", "false",
    ]  # fmt: skip


def _config_file(config: Path | None) -> Path:
    if config is not None:
        return config
    env = os.environ.get("LADDER_CONFIG")
    return Path(env) if env else Path("ladder.yaml")


def _launch(command: list[str], env: dict[str, str], print_only: bool) -> None:
    if print_only:
        print(" ".join(command))
        return
    sys.stdout.flush()
    os.execve(sys.executable, command, {**os.environ, **env})


def _warn_if_open(host: str, password_hash: str | None, what: str) -> None:
    if host not in LOOPBACK and not password_hash:
        err_console().print(
            f"[yellow]warning: binding {escape(host)} without a password: anyone who can reach it can use "
            f"the {what}; set one with `ladder ui --password-set`[/yellow]"
        )


_NO_PASSWORD = ConfigError(
    "no password was read: the input ended before the password and its repetition",
    hint="run `ladder ui --password-set` in a terminal, or pipe the password twice: "
    'printf \'%s\\n%s\\n\' "$PW" "$PW" | ladder ui --password-set',
)


def _read_new_password() -> str:
    """The new password, typed twice (or two lines of piped input). The end of the input is
    a user error with a hint, not a traceback."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise _NO_PASSWORD
    if not stdin.isatty():  # piped: read the two lines ourselves (getpass would warn about echo)
        lines = [stdin.readline(), stdin.readline()]
        if not lines[1]:  # the input ended before the second line
            raise _NO_PASSWORD
        first, second = (line.rstrip("\r\n") for line in lines)
        if first != second:
            raise ConfigError("the two passwords differ", hint="give the same password on both lines")
        return first
    try:
        return str(
            typer.prompt("new password (workbench and chat)", hide_input=True, confirmation_prompt=True)
        )
    except (typer.Abort, click.exceptions.Abort, EOFError):
        raise KeyboardInterrupt from None  # Ctrl-C (or Ctrl-D) at the prompt: "interrupted"


def _env(config: Path | None, home: Path | None, model: str | None) -> dict[str, str]:
    env = {"STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    if config is not None:
        env["LADDER_CONFIG"] = str(config.resolve())
    if home is not None:
        env["LADDER_HOME"] = str(home.resolve())
    if model:
        env["LADDER_MODEL"] = model
    return env


def ui_cmd(
    port: PortOpt = 8501,
    host: HostOpt = "127.0.0.1",
    password_set: Annotated[
        bool,
        typer.Option(
            "--password-set", help="Set the password of the workbench and the chat (stored hashed) and exit."
        ),
    ] = False,
    password_clear: Annotated[
        bool,
        typer.Option("--password-clear", help="Remove the password of the workbench and the chat and exit."),
    ] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Default model (e.g. fake).")] = None,
    print_command: PrintOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Start the workbench (decide, playground, knowledge base, evaluate, fine-tune, feedback, settings)."""
    from ui.auth import check_strength, hash_password, write_setting

    if password_set or password_clear:
        path = _config_file(config)
        if password_clear:
            write_setting(path, "ui_password_hash", None)
            console().print(f"removed the workbench password from {path}")
            return
        password = _read_new_password()
        check_strength(password)  # the same rule as the Settings page
        write_setting(path, "ui_password_hash", hash_password(password))
        console().print(f"stored the password's scrypt hash in {path} (setting ui_password_hash)")
        return
    settings = settings_from(config, home, model=model)
    _warn_if_open(host, settings.ui_password_hash, "workbench")
    command = streamlit_command(UI_DIR / "app.py", host, port, settings.max_file_mb)
    if not print_command:
        console().print(f"Ladder workbench on http://{host}:{port}")
    _launch(command, _env(config, home, model), print_command)


def chat_ui_cmd(
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="Strategy name or YAML config the chat answers with.")
    ] = "rag",
    kb: Annotated[str | None, typer.Option(help="Knowledge base for rag / agent.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model reference.")] = None,
    adapter: Annotated[str | None, typer.Option(help="A fine-tuned adapter on the model.")] = None,
    deployment: DeploymentOpt = None,
    title: Annotated[str | None, typer.Option(help="Title shown above the chat.")] = None,
    port: PortOpt = 8502,
    host: HostOpt = "127.0.0.1",
    print_command: PrintOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Start the end-user chat: only the chat, answering with one configured strategy."""
    from assistant.service import strategy_data

    settings = settings_from(config, home, model=model)
    strategy_data(strategy if not strategy.endswith((".yaml", ".yml")) else str(Path(strategy).resolve()))
    if strategy in ("rag", "agent") and not kb:
        from assistant.errors import ConfigError
        from assistant.knowledge import KnowledgeBase

        names = KnowledgeBase.list_all(settings)
        if len(names) != 1:  # the only knowledge base there is needs no naming
            known = f"knowledge bases: {', '.join(names)}" if names else "no knowledge base yet"
            raise ConfigError(
                f"--strategy {strategy} needs --kb ({known})",
                hint=f"ladder chat-ui --strategy {strategy} --kb NAME"
                + ("" if names else "; create one: ladder kb create NAME, then ladder kb add NAME FILES"),
            )
        kb = names[0]
        console().print(f"answering from knowledge base {escape(kb)} (the only one; --kb to choose)")
    model_ref = settings.model + (f"+{adapter}" if adapter else "")
    overrides: dict[str, Any] = {}
    if deployment is not None:
        if adapter:
            raise ConfigError("a deployment's model carries its adapter already", hint="leave out --adapter")
        model_ref, overrides = deployment_model(deployment, model, settings)
    env = _env(config, home, model_ref)
    env.update({f"LADDER_{key.upper()}": str(value) for key, value in overrides.items()})
    env["LADDER_CHAT_STRATEGY"] = (
        str(Path(strategy).resolve()) if strategy.endswith((".yaml", ".yml")) else strategy
    )
    if kb:
        env["LADDER_CHAT_KB"] = kb
    if title:
        env["LADDER_CHAT_TITLE"] = title
    _warn_if_open(host, settings.ui_password_hash, "chat")
    command = streamlit_command(UI_DIR / "chat_app.py", host, port, settings.max_file_mb)
    if print_command:
        print(" ".join(f"{k}={v}" for k, v in sorted(env.items())))
    else:
        console().print(f"Ladder chat on http://{host}:{port}")
    _launch(command, env, print_command)


__all__ = ["chat_ui_cmd", "streamlit_command", "ui_cmd"]
