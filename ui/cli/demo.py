"""``ladder demo``: the Qinghe Goods scenario's three decisions, end to end, with a report.

Exit codes: 0 when every decision recommends the rung the scenario was built for, 1 when one
does not (the report says which and why), 2 for bad input, 3-7 as elsewhere.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ui.cli.common import (
    ConfigOpt,
    HomeOpt,
    LangOpt,
    RichProgress,
    ThreadsOpt,
    console,
    err_console,
    settings_from,
)


def demo_cmd(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model to decide for (default: the `model` setting).")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="general, facts or routing (repeatable; default: all three)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the report (index.html).")] = Path("demo-report"),
    lang: LangOpt = None,
    no_finetune: Annotated[
        bool, typer.Option("--no-finetune", help="Recommend fine-tuning without training.")
    ] = False,
    open_report: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Climb the ladder on three built-in scenarios whose right answers are known: prompting,
    RAG and fine-tuning. Re-running reuses every cached answer and the trained adapter."""
    from evaluation.decide.demo import run_demo, write_demo_report

    flags = {"threads": threads, "language": lang}
    if model:
        flags["model"] = model
    settings = settings_from(config, home, **flags)
    console().print(
        f"Ladder demo with [bold]{escape(settings.model)}[/bold]: three decisions, cheapest rung first"
    )
    with RichProgress(eta=True) as progress:
        result = run_demo(settings, progress, scenario, allow_finetune=not no_finetune, language=lang)
    language = lang or settings.language
    table = Table(title="Ladder demo")
    for column in ("scenario", "expected", "recommended", "status", "", "time"):
        table.add_column(column)
    for outcome in result.outcomes:
        d = outcome.decision
        table.add_row(
            outcome.scenario.title_en,
            outcome.scenario.expected,
            d.recommended or "—",
            d.status,
            "[green]✓[/green]" if outcome.as_expected else "[red]✗[/red]",
            f"{outcome.wall_s / 60:.1f} min",
        )
    console().print(table)
    path = write_demo_report(result, out, language)
    console().print(f"total {result.wall_s / 60:.1f} min · report: {escape(str(path))}")
    if open_report:
        webbrowser.open(path.resolve().as_uri())
    if not result.as_expected:
        err_console().print("[red]a decision did not come out as the scenario expects; see the report[/red]")
        raise typer.Exit(1)
