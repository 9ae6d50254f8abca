"""``ladder serve``: the OpenAI-compatible HTTP API (``ui.server``).

Exit codes: 0 after a clean stop, 2 for a bad flag or setting (a key-less bind on a
non-loopback address included), 3 for an unknown ``--model``, ``--allow-model`` or ``--adapter``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ui.cli.common import (
    ConfigOpt,
    DeploymentOpt,
    HomeOpt,
    ThreadsOpt,
    console,
    deployment_model,
    err_console,
    settings_from,
)


def serve_cmd(
    host: Annotated[
        str, typer.Option(help="Address to bind; other machines need e.g. 0.0.0.0.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free one).")] = 8000,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model behind strategy names (default: the model setting)."),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            envvar="LADDER_SERVE_API_KEY",
            help="A key clients must send (repeatable; hashed at start). Or server_api_key_hashes.",
        ),
    ] = None,
    models_file: Annotated[
        Path | None, typer.Option("--models", help="YAML of named strategy configs offered as models.")
    ] = None,
    allow_model: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-model",
            help="Another model reference clients may name (repeatable). Or server_allowed_models.",
        ),
    ] = None,
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter",
            help="A registered adapter clients may name as the model: the server's model + that adapter "
            "(repeatable). Or server_adapters.",
        ),
    ] = None,
    deployment: DeploymentOpt = None,
    queue_size: Annotated[
        int | None, typer.Option(min=0, help="Requests that may wait for the model worker; more get 429.")
    ] = None,
    max_request_kb: Annotated[
        int | None, typer.Option(min=1, help="Largest request body; more get 413.")
    ] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Serve a non-loopback address without any API key.")
    ] = False,
    new_key: Annotated[
        bool,
        typer.Option("--new-key", help="Print a new random API key and its hash for settings, then exit."),
    ] = False,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Serve strategies as OpenAI-compatible models: /v1/models, /v1/chat/completions, /v1/completions,
    /v1/feedback."""
    from ui.server.config import adapter_reference, hash_key, is_loopback, server_config
    from ui.server.config import new_key as make_key

    if new_key:
        key = make_key()
        console().print(f"API key (give it to clients; it is not stored): {key}")
        console().print(f"for ladder.yaml:  server_api_key_hashes: {hash_key(key)}")
        return
    settings = settings_from(
        config,
        home,
        threads=threads,
        server_models=models_file,
        server_allowed_models=",".join(allow_model) if allow_model else None,
        server_adapters=",".join(adapter) if adapter else None,
        server_queue_size=queue_size,
        server_max_request_kb=max_request_kb,
    )
    if deployment is not None:
        from assistant.settings import replace

        model, overrides = deployment_model(deployment, model, settings)
        settings = replace(settings, **overrides)
    server = server_config(
        settings, host=host, port=port, model=model, api_keys=api_key, allow_no_auth=insecure_no_auth
    )
    server.check_bind()
    from assistant.models.refs import parse_model_ref

    # The operator's references are checked now: a client can only name what passes here.
    base = server.model or settings.model
    adapters = [adapter_reference(base, name) for name in server.adapters]
    for reference in ([model] if model is not None else []) + server.allowed_models + adapters:
        parse_model_ref(reference, settings)
    import uvicorn

    from ui.server.app import create_app

    app = create_app(settings, server)
    auth = (
        "API key required"
        if server.auth_required
        else "[yellow]no API key: open to anyone who can connect[/yellow]"
    )
    if not server.auth_required and is_loopback(host):
        auth += " [dim](loopback only)[/dim]"
    err_console().print(
        f"serving on http://{escape(host)}:{port}/v1 · model {escape(model or settings.model)} · {auth} · "
        f"queue {server.queue_size} · body ≤ {server.max_request_bytes // 1024} KB"
    )
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
