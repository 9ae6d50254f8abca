"""``ladder feedback list | show | promote | dismiss | export``: review end users' ratings.

Thin: the logic is in ``assistant.feedback``. Exit codes: 0 done, 2 refused (a bad flag, a
dismissed or already promoted item, no usable reference, a question that already feeds the
other side of the train/test split, or a training-side promotion of a question that repeats an
evaluation item), 3 no such feedback id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ui.cli.common import Col, ConfigOpt, HomeOpt, console, fitted_table, settings_from

feedback_app = typer.Typer(
    help="End users' feedback: review ratings, promote them to eval suites or training data.",
    no_args_is_help=True,
)


def _short(text: str | None, width: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@feedback_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option(help="new, promoted or dismissed.")] = None,
    rating: Annotated[str | None, typer.Option(help="up or down.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Ratings, newest first: id, rating, status, question, answer, correction."""
    from assistant.feedback import list_feedback

    settings = settings_from(config, home)
    items = list_feedback(settings, status=status, rating=rating, limit=limit)
    if as_json:
        for item in items:
            print(json.dumps(item.to_dict(), ensure_ascii=False, default=str))
        return
    if not items:
        console().print("no feedback yet" + (f" with status {status}" if status else ""))
        return
    rows = []
    for item in items:
        status_text = item.status + (
            " → " + ",".join(p.target for p in item.promotions) if item.promotions else ""
        )
        rows.append([
            str(item.id), "👍" if item.rating == "up" else "👎", status_text,
            escape(_short(item.question, 40)), escape(_short(item.answer, 40)),
            escape(_short(item.correction, 30)), escape(item.strategy or "-"), item.created,
        ])  # fmt: skip
    # id, rating and status stay whole; on a narrow terminal the creation time goes first.
    columns = [Col("id", key=True, justify="right"), Col("rating", key=True), Col("status", key=True),
               Col("question", min_width=16), Col("answer", drop=2, min_width=14),
               Col("correction", drop=1, min_width=14), Col("strategy", drop=3, key=True),
               Col("created", drop=4, key=True)]  # fmt: skip
    out = console()
    table = fitted_table("Feedback", columns, rows, out.width)
    out.print(table)


@feedback_app.command("show")
def show_cmd(
    feedback_id: Annotated[int, typer.Argument(help="Feedback id (see `ladder feedback list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """One rating in full: question, answer, contexts, citations, correction, promotions."""
    from assistant.feedback import get_feedback

    item = get_feedback(settings_from(config, home), feedback_id)
    if as_json:
        print(json.dumps(item.to_dict(), ensure_ascii=False, default=str))
        return
    out = console()
    out.print(f"[bold]feedback {item.id}[/bold] · {item.rating} · {item.status} · {item.created}")
    out.print(
        f"model {escape(item.model or '-')} · strategy {escape(item.strategy or '-')} · "
        f"session {escape(item.session_id or '-')} · from {escape(item.source)}"
    )
    for label, text in (("question", item.question), ("answer", item.answer),
                        ("correction", item.correction), ("comment", item.comment)):  # fmt: skip
        if text:
            out.print(f"[cyan]{label}:[/cyan] {escape(text)}")
    for number, context in enumerate(item.contexts, start=1):
        out.print(f"[dim]context {number}: {escape(_short(context, 200))}[/dim]")
    for citation in item.citations:
        out.print(f"[dim]cites [{citation.get('number')}] {escape(str(citation.get('source')))}[/dim]")
    for promotion in item.promotions:
        out.print(f"promoted to {promotion.target} ({promotion.side}) → {escape(promotion.path)}")
    if item.note:
        out.print(f"note: {escape(item.note)}")


@feedback_app.command("promote")
def promote_cmd(
    feedback_id: Annotated[int, typer.Argument(help="Feedback id.")],
    to: Annotated[
        str, typer.Option("--to", help="suite (test), sft, pairs, or train (sft + pairs where possible).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Suite YAML / JSONL file to extend (default LADDER_HOME/feedback/)."),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="The right answer (default: the correction, or a thumbs-up's answer).")
    ] = None,
    suite: Annotated[
        list[Path] | None,
        typer.Option(
            "--suite",
            help="Another evaluation suite a promotion to training data must not repeat (repeatable); "
            "datasets/suites/*.yaml and the suites feedback was promoted to are always checked.",
        ),
    ] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Promote a rating to an eval suite, SFT data or preference pairs. Refused (exit 2): a
    question already on the other side of the train/test split, and, for sft, pairs and train,
    a question that repeats an evaluation item (exact, normalised, or a near duplicate such as a
    one-character edit or a reordered clause)."""
    from assistant.feedback import promote
    from evaluation.suites.source import SuiteFiles

    settings = settings_from(config, home)
    done = promote(
        settings,
        feedback_id,
        to,
        path=out,
        reference=reference,
        suites=SuiteFiles(),
        check_suites=tuple(suite or ()),
    )
    for promotion in done:
        console().print(
            f"[green]promoted[/green] feedback {feedback_id} to {promotion.target} ({promotion.side} side) "
            f"→ {escape(promotion.path)}"
        )


@feedback_app.command("dismiss")
def dismiss_cmd(
    feedback_id: Annotated[int, typer.Argument(help="Feedback id.")],
    note: Annotated[str | None, typer.Option(help="Why (kept with the item).")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Mark a rating reviewed and not used."""
    from assistant.feedback import dismiss

    dismiss(settings_from(config, home), feedback_id, note)
    console().print(f"dismissed feedback {feedback_id}")


@feedback_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="File to write (.jsonl or .csv).")],
    status: Annotated[str | None, typer.Option(help="Only new, promoted or dismissed.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl or csv (default: from --out).")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write every rating, with its promotions, to JSONL or CSV."""
    from assistant.feedback import export_feedback

    chosen = fmt or ("csv" if out.suffix == ".csv" else "jsonl")
    count = export_feedback(settings_from(config, home), out, status=status, fmt=chosen)
    console().print(f"wrote {count} item(s) → {escape(str(out))}")
