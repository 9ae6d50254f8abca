"""``ladder deploy DECISION`` and ``ladder deployments list | show``: the cheapest serving format
that still meets the decision's targets, and past deployments.

Exit codes of ``ladder deploy``: 0 when a format meets every target (the choice), 1 when none
does, 2 a bad flag, decision (none recommended, an endpoint's rung) or format name, 3 an adapter
whose base model is not installed, 4 a format's conversion failed (nothing is left in
``LADDER_HOME/deployments``), 5 a format could not be measured, 6 a named format's engine is
not installed (the hint says how to install it).
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
    RichProgress,
    ThreadsOpt,
    console,
    fitted_table,
    print_verdict,
    settings_from,
)

if TYPE_CHECKING:
    from evaluation.deploy.result import Deployment

deployments_app = typer.Typer(help="Past deployments: list, show.", no_args_is_help=True)


def deploy_cmd(
    decision: Annotated[str, typer.Argument(help="A decision's name or id (`ladder decisions list`).")],
    formats: Annotated[
        str | None,
        typer.Option("--formats", help="Only these formats, comma-separated (default: every one)."),
    ] = None,
    stop_at_first: Annotated[
        bool,
        typer.Option(
            "--stop-at-first",
            help="Skip the dearer formats once one meets (default: measure all; the table is the finding).",
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="The deployment's name (default: the decision's).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write deployment.md and .html here.")] = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Build the decision's model in each serving format, cheapest first, evaluate each on the
    held-out test split, and keep the cheapest that meets every target."""
    from evaluation.deploy.engine import DeployRequest, exit_code, run_deploy
    from evaluation.deploy.report import write_reports

    settings = settings_from(config, home, threads=threads)
    names = [f.strip() for f in formats.split(",") if f.strip()] if formats else None
    request = DeployRequest(decision, names, stop_at_first=stop_at_first, name=name)
    with RichProgress(eta=True) as progress:
        deployment = run_deploy(request, settings, progress)
    print_deployment(deployment)
    console().print(f"[dim]deployment: {settings.home / 'deployments' / deployment.name}[/dim]")
    for path in write_reports(deployment, out) if out is not None else []:
        console().print(f"[dim]report: {path}[/dim]")
    code = exit_code(deployment)
    if code:
        raise typer.Exit(code)


def print_deployment(deployment: Deployment) -> None:
    from evaluation.deploy.report import format_table, verdict_lines

    header, rows = format_table(deployment)
    title = f"{deployment.name} · {deployment.source_model} · test {deployment.test_suite}"
    print_verdict(verdict_lines(deployment), title, header, rows)


@deployments_app.command("list")
def deployments_list(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Every deployment: name, created, decision, chosen format."""
    from evaluation.deploy.record import list_deployments

    found = list_deployments(settings_from(config, home))
    if not found:
        console().print("no deployments yet: `ladder deploy DECISION` makes one")
        return
    rows = [
        [escape(d.name), d.created.replace("T", " ")[:16], escape(d.decision_name),
         escape(d.chosen or "none"), escape(d.source_model)]
        for d in found
    ]  # fmt: skip
    columns = [Col("name", key=True), Col("created", drop=2, key=True), Col("decision", min_width=12),
               Col("chosen", key=True), Col("model", drop=1, min_width=14)]  # fmt: skip
    out = console()
    out.print(fitted_table("Deployments", columns, rows, out.width))


@deployments_app.command("show")
def deployments_show(
    name: Annotated[str, typer.Argument(help="A deployment's name (`ladder deployments list`).")],
    out: Annotated[Path | None, typer.Option(help="Also write deployment.md and .html here.")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """A deployment's table, verdict and how to serve it."""
    from evaluation.deploy.record import load_deployment
    from evaluation.deploy.report import write_reports

    deployment = load_deployment(name, settings_from(config, home))
    print_deployment(deployment)
    for path in write_reports(deployment, out) if out is not None else []:
        console().print(f"[dim]report: {path}[/dim]")
