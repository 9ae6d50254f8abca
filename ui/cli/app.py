"""The ``ladder`` command line. Thin: it parses flags, calls the service / models APIs and
prints. Heavy libraries (torch, transformers) are imported only inside the commands that
need them, so ``ladder --help`` stays fast."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from assistant.errors import LadderError
from ui.cli.common import (
    console,
    err_console,
    reflow_help,
)

if TYPE_CHECKING:
    pass

app = typer.Typer(
    name="ladder",
    help="Ladder: find the cheapest way to adopt an LLM that meets your bar, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_subcommands() -> None:
    """Every command group lives in its own module under ``ui/cli/`` (``ladder kb`` in ``kb.py``,
    ``ladder finetune train`` in ``finetune/train.py``); registered here in the order --help lists."""
    from ui.cli.ask import ask_cmd
    from ui.cli.decide import decide_cmd, decisions_app
    from ui.cli.demo import demo_cmd
    from ui.cli.deploy import deploy_cmd, deployments_app
    from ui.cli.doctor import doctor_cmd
    from ui.cli.eval import eval_cmd, runs_app
    from ui.cli.feedback import feedback_app
    from ui.cli.finetune import finetune_app
    from ui.cli.judge import judge_app
    from ui.cli.kb import kb_app
    from ui.cli.models import models_app
    from ui.cli.monitor import monitor_app
    from ui.cli.serve import serve_cmd
    from ui.cli.suite import suite_app
    from ui.cli.workbench import chat_ui_cmd, ui_cmd

    app.add_typer(models_app, name="models")
    app.command("ask")(ask_cmd)
    app.command("doctor")(doctor_cmd)
    app.add_typer(kb_app, name="kb")
    app.add_typer(suite_app, name="suite")
    app.command("eval")(eval_cmd)
    app.add_typer(runs_app, name="runs")
    app.add_typer(judge_app, name="judge")
    app.add_typer(finetune_app, name="finetune")
    app.command("decide")(decide_cmd)
    app.add_typer(decisions_app, name="decisions")
    app.command("deploy")(deploy_cmd)
    app.add_typer(deployments_app, name="deployments")
    app.add_typer(feedback_app, name="feedback")
    app.add_typer(monitor_app, name="monitor")
    app.command("serve")(serve_cmd)
    app.command("ui")(ui_cmd)
    app.command("chat-ui")(chat_ui_cmd)
    app.command("demo")(demo_cmd)


@app.callback()
def _root(
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also show info lines and what libraries print."),
    ] = False,
) -> None:
    """Ladder: find the cheapest way to adopt an LLM that meets your bar, with evidence."""
    from assistant.logs import configure

    configure(verbose)


_register_subcommands()


@app.command("version")
def version_cmd() -> None:
    """Print the version."""
    from assistant import __version__

    print(__version__)


reflow_help(app)  # after every command is registered: help wraps at the terminal's width


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """The ``ClickException`` classes the installed typer may raise. typer 0.2x vendors click as
    ``typer._click`` and raises its own classes; older typer raises ``click``'s. Both are looked
    up in ``sys.modules`` (whichever typer uses is imported by now), so neither is imported here."""
    found: list[type[BaseException]] = []
    for module_name in ("typer._click.exceptions", "click.exceptions"):
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(module.ClickException)
    return tuple(found)


def _abort_types() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [typer.Abort]
    click_exceptions = sys.modules.get("click.exceptions")
    if click_exceptions is not None:
        found.append(click_exceptions.Abort)
    return tuple(found)


def _report_click_exception(exc: Any) -> int:
    """A usage error (missing argument, bad value, unknown option or command) as one ``error:``
    line and one ``hint:`` line, like a ``LadderError``; returns the exit code (2 for usage)."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A group run without a sub-command: its help. typer's rich help prints itself while
        # the exception is built, so the message is empty then; plain click puts it there.
        help_text = exc.format_message()
        if help_text.strip():
            console().print(help_text, markup=False, highlight=False, soft_wrap=True)
        return int(exc.exit_code)
    err = err_console()
    err.print(f"[red]error:[/red] {escape(exc.format_message())}", soft_wrap=True)
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split())
        usage = usage[0].lower() + usage[1:] if usage else usage
        err.print(f"[dim]hint: {escape(usage)}; `{escape(ctx.command_path)} --help` lists the arguments "
                  "and options[/dim]", soft_wrap=True)  # fmt: skip
    return int(exc.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become a message and an exit code, not a traceback."""
    try:
        code = app(args=argv, prog_name="ladder", standalone_mode=False)
    except LadderError as exc:
        err_console().print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        if exc.hint:
            err_console().print(f"[dim]hint: {escape(exc.hint)}[/dim]", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console().print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if isinstance(exc, _click_exception_types()):
            sys.exit(_report_click_exception(exc))
        if isinstance(exc, _abort_types()):
            err_console().print("aborted")
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
