"""``ladder judge``: check an LLM judge against a person's labels, and list the checks.

Registered in ``ui.cli.app`` as ``app.add_typer(judge_app, name="judge")``. Importing this
module imports nothing heavy: the judge's model loads inside ``check``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ui.cli.common import Col, ConfigOpt, HomeOpt, RichProgress, console, fitted_table, settings_from

judge_app = typer.Typer(
    help="LLM judges: measure how well a judge agrees with people before trusting its scores.",
    no_args_is_help=True,
)


@judge_app.command("check")
def check_cmd(
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            "-j",
            help="Judge model: a pack, a folder or openai:<model>@<url> (default: settings' model).",
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", help="A judged metric to check (repeatable; default: every one the set labels)."
        ),
    ] = None,
    labelled: Annotated[
        Path | None,
        typer.Option(
            "--set", help="A labelled set (JSONL; default: Ladder's own, datasets/judge/calibration.jsonl)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Score a labelled set with each judged metric and measure the judge's agreement with the
    labels (pairwise concordance: 0.5 is a coin, 1.0 orders every pair as a person does). The
    result is stored per judge; reports show it beside judged scores and decisions refuse a judged
    target whose judge agrees less than `judge_min_agreement` (default 0.70)."""
    from evaluation.calibration.check import check_judge
    from evaluation.calibration.data import load_set
    from evaluation.calibration.gate import DEFAULT_MIN_AGREEMENT
    from evaluation.calibration.store import save
    from evaluation.metrics.judge import Judge

    settings = settings_from(config, home)
    judge_ref = judge or settings.model
    data = load_set(labelled)
    with RichProgress() as progress:
        progress.start(f"loading the judge {judge_ref}", total=None)
        built = Judge.from_settings(judge_ref, settings)
        result = check_judge(judge_ref, built, data, metric or (), progress)
    path = save(settings, result) if labelled is None else None
    if as_json:
        payload = {
            "judge": result.judge,
            "set": result.set_name,
            "judge_calls": result.judge_calls,
            "wall_s": round(result.wall_s, 1),
            "metrics": {
                name: {**m.agreement.to_dict(), "by_lang": {k: a.to_dict() for k, a in m.by_lang.items()}}
                for name, m in result.metrics.items()
            },
        }
        console().print_json(json.dumps(payload, ensure_ascii=False))
        return
    rows = []
    for name, measured in result.metrics.items():
        a = measured.agreement
        value = "n/a" if a.concordance is None else f"{a.concordance:.2f}"
        interval = f"[{a.low:.2f}, {a.high:.2f}]" if a.low is not None and a.high is not None else "–"
        verdict = (
            "n/a"
            if a.concordance is None
            else ("ok" if a.concordance >= DEFAULT_MIN_AGREEMENT else "too low")
        )
        mae = "–" if a.mae is None else f"{a.mae:.2f}"
        rows.append(
            [name, value, interval, str(a.n), str(a.failed), mae, verdict, f"{measured.wall_s:.0f} s"]
        )
    columns = [
        Col("metric", key=True), Col("agreement", key=True), Col("95% CI", key=True),
        Col("items", justify="right", drop=2, min_width=5), Col("n/a", justify="right", drop=3, min_width=3),
        Col("mean |Δ|", justify="right", drop=4, min_width=8), Col("vs 0.70", key=True),
        Col("time", justify="right", drop=5, min_width=6),
    ]  # fmt: skip
    out = console()
    out.print(fitted_table(f"judge {escape(judge_ref)} on {escape(data.name)}", columns, rows, out.width))
    for name, measured in result.metrics.items():
        parts = [
            f"{lang} {a.concordance:.2f} (n={a.n})"
            for lang, a in measured.by_lang.items()
            if a.concordance is not None and len(measured.by_lang) > 1
        ]
        if parts:
            out.print(f"[dim]{name} by language: {', '.join(parts)}[/dim]")
    out.print(f"[dim]{result.judge_calls} judge calls in {result.wall_s:.0f} s[/dim]")
    if path is not None:
        out.print(f"[dim]stored in {escape(str(path))}[/dim]")
    else:
        out.print("[dim]not stored: only checks on Ladder's own labelled set are stored[/dim]")


@judge_app.command("list")
def list_cmd(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """The judges checked so far and their agreement per metric."""
    from evaluation.calibration.store import list_records

    settings = settings_from(config, home)
    records = list_records(settings)
    out = console()
    if not records:
        out.print("no judge checked yet: run `ladder judge check --judge MODEL`")
        return
    rows = []
    for record in records:
        for name, m in sorted((record.get("metrics") or {}).items()):
            value = m.get("concordance")
            interval = (
                f"[{m['low']:.2f}, {m['high']:.2f}]"
                if m.get("low") is not None and m.get("high") is not None
                else "–"
            )
            rows.append([
                escape(record["judge"]), name, "n/a" if value is None else f"{value:.2f}", interval,
                str(m.get("n", "")), str(m.get("created", ""))[:16].replace("T", " "),
            ])  # fmt: skip
    columns = [
        Col("judge", key=True), Col("metric", key=True), Col("agreement", key=True), Col("95% CI", key=True),
        Col("items", justify="right", drop=1, min_width=5), Col("checked", drop=2, min_width=16),
    ]  # fmt: skip
    out.print(fitted_table("judge checks", columns, rows, out.width))
