"""``ladder monitor show | check | drift | retest``: how the deployed choice does in use.

Thin: the logic is in ``evaluation.monitor`` (over ``assistant.monitoring``'s answer log).
Exit codes of ``ladder monitor check``: 0 no alert fires, 1 at least one fires, 2 a bad rule
file, flag or decision id, 3 a knowledge base that does not exist. ``retest`` exits like
``ladder decide`` on the new decision (0 met, 1 not met).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ui.cli.common import Col, ConfigOpt, HomeOpt, RichProgress, console, fitted_table, settings_from

if TYPE_CHECKING:
    from assistant.settings import Settings
    from evaluation.monitor import DriftReference, DriftReport, RetestResult

monitor_app = typer.Typer(
    help="Monitoring: daily series, drift, alerts (for cron/CI), and re-testing a decision on feedback.",
    no_args_is_help=True,
)

AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Look as of this time (ISO) or the end of this day (YYYY-MM-DD); default now."),
]
DecisionOpt = Annotated[
    str | None, typer.Option("--decision", help="Drift reference: a decision's dev suite (id or latest).")
]
SuiteOpt = Annotated[Path | None, typer.Option("--suite", help="Drift reference: a suite file.")]
KbOpt = Annotated[str | None, typer.Option("--kb", help="Knowledge base (default: the decision's).")]


def as_of(text: str | None) -> datetime | None:
    from assistant.errors import ConfigError

    if text is None:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--at: cannot read {text!r}", hint="use YYYY-MM-DD or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fmt(value: Any, kind: str = "") -> str:
    from evaluation.monitor.series import format_value

    return format_value(value, kind)


@monitor_app.command("show")
def show_cmd(
    days: Annotated[int, typer.Option(min=1, help="Days to show, up to --at's day.")] = 14,
    at: AtOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the series as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the series as CSV.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """The daily series: volume, thumbs-down, not-in-KB and citation rates, latency, best-hit score."""
    from evaluation.monitor import daily_series, series_csv, series_json

    series = daily_series(settings_from(config, home), days, as_of(at))
    if as_json or as_csv:
        typer.echo(series_json(series) if as_json else series_csv(series), nl=False)
        return
    rows = [
        [
            s.day,
            str(s.questions),
            f"{_fmt(s.thumbs_down_rate, 'rate')} ({s.ratings})",
            _fmt(s.not_in_kb_rate, "rate"),
            _fmt(s.citation_rate, "rate"),
            _fmt(s.latency_p50_ms, "ms"),
            _fmt(s.latency_p95_ms, "ms"),
            _fmt(s.best_score_median),
            _fmt(s.best_score_p10),
        ]
        for s in series
    ]
    columns = [
        Col("day", key=True),
        Col("questions", key=True, justify="right"),
        Col("👎 (ratings)", key=True),
        Col("not in KB", drop=3),
        Col("cited", drop=4),
        Col("p50 ms", drop=2, justify="right"),
        Col("p95 ms", key=True, justify="right"),
        Col("best score", drop=5),
        Col("p10 score", drop=6),
    ]
    out = console()
    out.print(fitted_table("Answers served, by day (UTC)", columns, rows, out.width))


def _reference(settings: Settings, decision: str | None, suite: Path | None) -> DriftReference | None:
    from assistant.errors import ConfigError
    from evaluation.monitor import reference_from_decision, reference_from_suite

    if decision and suite:
        raise ConfigError("give --decision or --suite, not both")
    if decision:
        return reference_from_decision(settings, decision)
    if suite:
        return reference_from_suite(suite)
    return None


def _print_drift(report: DriftReport) -> None:
    out = console()
    out.print(
        f"[bold]drift[/bold] {report.start[:16]} → {report.end[:16]} · {report.recent} distinct "
        f"questions · reference {escape(report.reference)} · kb {escape(report.kb)}"
    )
    for s in report.similarities:
        what = "nearest chunk" if s.name == "kb" else "nearest dev question"
        out.print(
            f"  {what}: median {_fmt(s.reference_median)} (reference, n={s.reference_n}) vs "
            f"{_fmt(s.recent_median)} (recent, n={s.recent_n}); KS D={_fmt(s.ks_d)} p={_fmt(s.ks_p)}; "
            f"far below {_fmt(s.far_below)}"
        )
    if report.far_share is not None:
        out.print(
            f"  far from everything: {report.far}/{report.recent} = {report.far_share:.1%} "
            f"(<= 5% expected without drift; beta-binomial p = {report.far_p:.3g})"
        )
    for example in report.far_examples:
        out.print(f"  [dim]far: {escape(example[:100])}[/dim]")
    for note in report.notes:
        out.print(f"  [yellow]{escape(note)}[/yellow]")


@monitor_app.command("drift")
def drift_cmd(
    decision: DecisionOpt = None,
    suite: SuiteOpt = None,
    kb: KbOpt = None,
    days: Annotated[float, typer.Option(min=0.01, help="The recent window, in days.")] = 7,
    at: AtOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Recent questions against the decision's dev suite and the knowledge base: KS tests on the
    nearest-neighbour similarities and the share of questions far from everything."""
    from assistant.errors import ConfigError
    from evaluation.monitor import drift

    settings = settings_from(config, home)
    reference = _reference(settings, decision, suite)
    if reference is None:
        raise ConfigError("drift needs a reference", hint="give --decision ID (or latest) or --suite FILE")
    report = drift(settings, reference, kb=kb, days=days, as_of=as_of(at))
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    _print_drift(report)


@monitor_app.command("check")
def check_cmd(
    rules: Annotated[
        Path | None, typer.Option("--rules", help="Rule file (YAML); default: the shipped rules.")
    ] = None,
    decision: DecisionOpt = None,
    suite: SuiteOpt = None,
    kb: KbOpt = None,
    at: AtOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Check the alert rules; exit 1 when one fires (for cron or CI), 0 when all are quiet."""
    from evaluation.monitor import any_firing, check, load_rules

    settings = settings_from(config, home)
    rule_file = load_rules(rules)
    reference = _reference(settings, decision, suite)
    if reference is None and (rule_file.drift_decision or rule_file.drift_suite):
        reference = _reference(settings, rule_file.drift_decision, rule_file.drift_suite)
    results = check(
        settings, rule_file.rules, as_of=as_of(at), drift_reference=reference, kb=kb or rule_file.drift_kb
    )
    if as_json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        out = console()
        for r in results:
            colour = {"firing": "red", "quiet": "green"}.get(r.state, "yellow")
            value = _fmt(r.value)
            line = (
                f"[{colour}]{r.state.upper()}[/{colour}] {escape(r.rule)}: "
                f"{r.metric} over {r.window_days:g}d = {value} (threshold {r.op} {r.threshold:g}; "
                f"{r.samples} {r.sample_of}, needs >= {r.min_samples})"
            )
            out.print(line + (f" [dim]{escape(r.note)}[/dim]" if r.note else ""), soft_wrap=True)
    if any_firing(results):
        raise typer.Exit(1)


def _print_retest(result: RetestResult) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"new split from promoted feedback: {result.dev_items} dev + {result.test_items} test items "
        f"({result.feedback_items} promoted, {len(result.dropped)} dropped as repeated in training data)"
    )
    for leak in result.dropped:
        out.print(
            f"  [dim]dropped {escape(leak['item'])}: {leak['match']} in {escape(leak['training'])}[/dim]"
        )
    table = Table(title="old and new verdicts")
    for column in ("", "old", "new"):
        table.add_column(column)
    old, new = result.old, result.new
    table.add_row("decision", old.decision_id, new.decision_id)
    table.add_row("status", old.status, new.status)
    table.add_row("recommended", escape(old.recommended or "—"), escape(new.recommended or "—"))
    table.add_row("dev suite", escape(old.dev_suite), escape(new.dev_suite))
    labels = list(dict.fromkeys([r["label"] for r in old.rungs] + [r["label"] for r in new.rungs]))
    for label in labels:
        cells = []
        for verdict in (old, new):
            rung = next((r for r in verdict.rungs if r["label"] == label), None)
            if rung is None or not rung["dev"]:
                cells.append(rung["state"] if rung else "—")
                continue
            means = ", ".join(f"{m} {_fmt(v)}" for m, v in rung["dev"].items())
            cells.append(("meets · " if rung["meets"] else "") + means)
        table.add_row(escape(label), *(escape(c) for c in cells))
    out.print(table)
    out.print(
        ("[yellow]the verdict changed[/yellow]" if result.changed else "the verdict holds")
        + f" · new config {escape(result.config)}"
    )


@monitor_app.command("retest")
def retest_cmd(
    decision: Annotated[str, typer.Option("--decision", help="The decision to run again (id or latest).")],
    keep_old: Annotated[
        bool, typer.Option("--keep-old", help="Keep the decision's own dev/test items in the new split.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """A new dev/test split from promoted feedback (no question that training data repeats), the
    decision run again on it, and the old and new verdicts side by side."""
    from evaluation.decide.result import MET, TIE
    from evaluation.monitor import retest

    settings = settings_from(config, home)
    with RichProgress(eta=True) as progress:
        result = retest(settings, decision, keep_old=keep_old, progress=progress)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        _print_retest(result)
    if result.new.status not in (MET, TIE):
        raise typer.Exit(1)
