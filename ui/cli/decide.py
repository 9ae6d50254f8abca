"""``ladder decide`` and ``ladder decisions``: climb the ladder, and look at past decisions.

Exit codes of ``ladder decide``: 0 when a rung meets the target (the recommendation), 1
when none does (or the held-out split contradicts the dev result), 2 for a bad config, and
the usual codes (3 missing model, ...) when the decision cannot run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ui.cli.common import (
    Col,
    ConfigOpt,
    HomeOpt,
    LangOpt,
    RichProgress,
    ThreadsOpt,
    console,
    fitted_table,
    print_verdict,
    settings_from,
)

if TYPE_CHECKING:
    from evaluation.decide.result import Decision
    from evaluation.decide.store import DecisionStore

decisions_app = typer.Typer(help="Past decisions: list, show, delete.", no_args_is_help=True)


def decide_cmd(
    config_file: Annotated[Path, typer.Argument(help="Decision config YAML (suites, targets, rungs).")],
    out: Annotated[
        Path | None, typer.Option(help="Write decision.md, .html and .json into this folder.")
    ] = None,
    lang: LangOpt = None,
    allow_finetune: Annotated[
        bool | None,
        typer.Option(
            "--allow-finetune/--no-finetune", help="May the finetune rung train (overrides the config)?"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Evaluate the rungs in order of cost and recommend the cheapest that meets the targets."""
    from evaluation.decide.engine import exit_code, load_decision_config, run_decision
    from evaluation.decide.report import render_json, write_all

    settings = settings_from(config, home, threads=threads, language=lang)
    decision_config = load_decision_config(config_file)
    with RichProgress(eta=True) as progress:
        decision = run_decision(
            decision_config, settings, progress, allow_finetune=allow_finetune, language=lang
        )
    if as_json:
        typer.echo(render_json(decision), nl=False)
    else:
        print_decision(decision)
    if out is not None:
        for path in write_all(decision, out):
            console().print(f"[dim]report: {path}[/dim]")
    code = exit_code(decision)
    if code:
        raise typer.Exit(code)


def print_decision(decision: Decision) -> None:
    from evaluation.decide.report import calls_text, rung_table
    from evaluation.decide.text import explain
    from evaluation.decide.warnings import warning_lines

    out = console()
    header, rows = rung_table(decision)
    title = f"{decision.name} · {decision.decision_id} · dev {decision.dev_suite}"
    print_verdict(explain(decision), title, header, rows)
    for line in warning_lines(decision):
        out.print(f"[yellow]{escape(line)}[/yellow]")
    for metric, agreement in decision.judge_agreement.items():
        judge = escape(str(decision.judge))
        out.print(f"[dim]judge {judge} on {escape(metric)}: agreement {escape(agreement)}[/dim]")
    out.print(f"[dim]{calls_text(decision)} model calls · {decision.wall_s:.1f} s[/dim]")


def _store(config: Path | None, home: Path | None) -> DecisionStore:
    from evaluation.decide.store import DecisionStore

    return DecisionStore(settings_from(config, home).db_path)


@decisions_app.command("list")
def decisions_list(
    limit: Annotated[int, typer.Option(min=1)] = 20, config: ConfigOpt = None, home: HomeOpt = None
) -> None:
    """The newest decisions: id, name, status, recommended rung."""
    with _store(config, home) as store:
        rows = store.list_decisions(limit)
    if not rows:
        console().print("no decisions yet: `ladder decide CONFIG` makes one")
        return
    table_rows = [
        [row["decision_id"], row["created"].replace("T", " ")[:16], escape(row["name"]), row["status"],
         escape(row["recommended"] or "—")]
        for row in rows
    ]  # fmt: skip
    columns = [Col("decision", key=True), Col("created", drop=2, key=True), Col("name", min_width=16),
               Col("status", key=True), Col("recommended", drop=1, min_width=14)]  # fmt: skip
    out = console()
    table = fitted_table("Decisions", columns, table_rows, out.width)
    out.print(table)


@decisions_app.command("show")
def decisions_show(
    decision: Annotated[str, typer.Argument(help="Decision id (a unique prefix, or `latest`).")],
    out: Annotated[Path | None, typer.Option(help="Also write decision.md, .html and .json here.")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="en or zh.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """A stored decision: verdict, rung table and reasons; optionally its reports again."""
    from evaluation.decide.report import render_json, write_all

    with _store(config, home) as store:
        result = store.load_decision(decision)
    if lang is not None:
        settings_from(config, home, language=lang)  # validates the value
        result.language = lang
    if as_json:
        typer.echo(render_json(result), nl=False)
    else:
        print_decision(result)
    for path in write_all(result, out) if out is not None else []:
        console().print(f"[dim]report: {path}[/dim]")


@decisions_app.command("rm")
def decisions_rm(decision: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Delete a stored decision (its evaluation runs stay)."""
    with _store(config, home) as store:
        decision_id = store.delete_decision(decision)
    console().print(f"deleted decision {decision_id}")
