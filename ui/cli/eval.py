"""``ladder eval`` and ``ladder runs``: run suites, gate CI on thresholds, inspect past runs.

Exit codes of ``ladder eval``: 0 when every threshold is met, 1 when one is missed (the
message names it), and the usual error codes (2 for a bad suite, flag or config, 3 for a
missing model, ...) when the run cannot happen; then no run is marked complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from assistant.errors import ConfigError
from ui.cli.common import (
    Col,
    ConfigOpt,
    HomeOpt,
    RichProgress,
    ThreadsOpt,
    console,
    err_console,
    fitted_table,
    settings_from,
)
from ui.cli.suite import suite_file

if TYPE_CHECKING:
    from evaluation.results import Comparison, CostResult, RunResult
    from evaluation.store import RunStore

runs_app = typer.Typer(help="Past evaluation runs: list, show, compare, delete.", no_args_is_help=True)
THRESHOLD_MISSED = 1


def parse_fail_under(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in values or []:
        label, eq, number = value.partition("=")
        try:
            if not eq or not label.strip():
                raise ValueError
            out[label.strip()] = float(number)
        except ValueError:
            raise ConfigError(
                f"bad --fail-under {value!r}", hint="use METRIC=VALUE, e.g. --fail-under accuracy=0.6"
            ) from None
    return out


def eval_cmd(
    suite: Annotated[
        Path,
        typer.Argument(
            help="Suite YAML, a .jsonl/.csv data file to run as one, or the name of a built-in suite "
            "(`ladder suite list`)."
        ),
    ],
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", "-s", help="Strategy name or YAML config; repeat to compare several."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model for every strategy.")] = None,
    judge: Annotated[
        str | None, typer.Option(help="Judge model for ragas metrics (default: the evaluated model).")
    ] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Deterministic metrics only.")] = False,
    mode: Annotated[
        str | None, typer.Option(help="MCQ: logprob (score the options) or generate (free answer).")
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option("--fail-under", help="METRIC=VALUE threshold (repeatable); exit 1 if missed."),
    ] = None,
    report: Annotated[
        list[Path] | None,
        typer.Option("--report", help="Write a report: .md, .html, .json or .xml (repeatable)."),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML for CI.")] = None,
    kb: Annotated[str | None, typer.Option(help="Knowledge base for rag / agent.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items (a quick check).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Answer every item again.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new run instead of resuming one.")] = False,
    threads: ThreadsOpt = None,
    batch_size: Annotated[int | None, typer.Option(help="Items per batch (and per commit).")] = None,
    latency_sample: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Questions answered again one at a time to measure single-request latency "
            "(default: the latency_sample setting, 5; 0: do not measure).",
        ),
    ] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Run a suite with one or more strategies; print scores with 95% CIs; exit 1 on a missed threshold."""
    from evaluation.report import render_junit, write_report
    from evaluation.runner import EvalPlan, Runner

    settings = settings_from(config, home, threads=threads, batch_size=batch_size)
    suite = suite_file(suite)
    _note_data_file(suite)
    plan = EvalPlan(
        suite=suite, strategies=strategy or ["prompt"], model=model, judge=judge, no_judge=no_judge,
        mode=mode, fail_under=parse_fail_under(fail_under), use_cache=not no_cache, resume=not fresh,
        kb=kb, limit=limit, latency_sample=latency_sample,
    )  # fmt: skip
    with RichProgress(eta=True) as progress:
        run = Runner(settings, progress=progress).run(plan)
    print_run(run)
    for path in report or []:
        console().print(f"[dim]report: {write_report(run, path)}[/dim]")
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(render_junit(run), encoding="utf-8")
        console().print(f"[dim]JUnit: {junit}[/dim]")
    if run.failures:
        for failure in run.failures:
            err_console().print(f"[red]threshold missed:[/red] {escape(failure)}")
        raise typer.Exit(THRESHOLD_MISSED)


def _note_data_file(suite: Path) -> None:
    """A data file given where a suite YAML is expected runs as a suite of its own: say so, and
    how to get a YAML to set metrics, thresholds and the prompt."""
    from evaluation.suites.spec import data_file_spec, is_data_file

    if not is_data_file(suite):
        return
    spec = data_file_spec(suite)
    err_console().print(
        f"[dim]note: {escape(suite.name)} is a data file, not a suite YAML: running it as a {spec.kind} "
        f"suite with the default metrics ({escape(', '.join(map(str, spec.metrics)))}); "
        f"`ladder suite init {escape(str(suite))}` writes a suite YAML to set metrics, thresholds "
        "and the prompt[/dim]",
        soft_wrap=True,
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _speed_cells(cost: CostResult) -> list[str]:
    """calls per question, compute per question (batched), single-request p95 (n)."""
    p95 = _num(cost.latency_p95_s)
    if cost.latency_n and cost.latency_p95_s is not None:
        p95 += f" (n={cost.latency_n})"
    return [f"{cost.model_calls_mean:.1f}", _num(cost.compute_s_mean), p95]


def print_run(run: RunResult) -> None:
    from evaluation.report.common import latency_how

    out = console()
    judge = run.judge or "none (deterministic metrics only)"
    out.print(
        f"[bold]{escape(run.suite)}[/bold] · run {run.run_id} · {run.status} · model {escape(run.model)} · "
        f"judge {escape(judge)}" + (f" · mode {run.mode}" if run.kind == "mcq" else "")
    )
    if run.suite_review:
        out.print(f"[yellow]warning: {escape(run.suite_review)}[/yellow]")
    if run.judge and run.judge_agreement:
        from evaluation.report.common import agreement_text, agreement_warns

        for label in run.judge_agreement:
            text = agreement_text(run, label) or ""
            style = "yellow" if agreement_warns(run, label) else "dim"
            out.print(f"[{style}]{escape(label)}: {escape(text)}[/{style}]")
    labels = list(dict.fromkeys(label for s in run.strategies for label in s.metrics))
    table = Table(title="Scores: mean [95% CI]")
    table.add_column("strategy", no_wrap=True)
    for label in labels:
        table.add_column(label)
    table.add_column("cost / 1k q")
    table.add_column("calls/q")
    table.add_column("compute/q s (batched)")
    table.add_column("1-request p95 s")
    for strategy in run.strategies:
        cells = []
        for label in labels:
            metric = strategy.metrics.get(label)
            if metric is None:
                cells.append("-")
                continue
            cell = _num(metric.mean)
            if metric.low is not None and metric.high is not None:
                cell += f" [dim][{metric.low:.2f}, {metric.high:.2f}][/dim]"
            if metric.n_na:
                cell += f" [yellow]({metric.n_na} n/a)[/yellow]"
            if metric.passed is not None:
                cell += " [green]✓[/green]" if metric.passed else " [red]✗[/red]"
            cells.append(cell)
        cost = strategy.cost
        money = (
            "-"
            if cost is None or cost.cost_per_1k_questions is None
            else (f"{cost.cost_per_1k_questions:.4f} {cost.currency}")
        )
        speed = ["-", "-", "-"] if cost is None else _speed_cells(cost)
        table.add_row(escape(strategy.strategy), *cells, money, *speed)
    out.print(table)
    out.print(
        "[dim]compute/q: each batch's wall time / the questions it held (what the price is charged "
        "on); 1-request p95: what one user waits, measured on single requests[/dim]"
    )
    for strategy in run.strategies:
        if strategy.cost is not None:
            out.print(f"[dim]{escape(strategy.strategy)}: {escape(latency_how(strategy.cost))}[/dim]")
            if strategy.cost.judge_model:
                out.print(f"[dim]{escape(strategy.strategy)}: {escape(_judge_share(strategy.cost))}[/dim]")
    for strategy in run.strategies:
        for label, metric in strategy.metrics.items():
            for reason, count in metric.na_reasons.items():
                out.print(
                    f"[yellow]{escape(strategy.strategy)} · {label}: {count} n/a: {escape(reason)}[/yellow]"
                )
        if strategy.breakdown.get("category"):
            groups = ", ".join(
                f"{g} {_num(r.mean)} (n={r.n})" for g, r in strategy.breakdown["category"].items()
            )
            out.print(
                f"{escape(strategy.strategy)} · {strategy.breakdown_metric} by category: {escape(groups)}"
            )
    for comparison in run.comparisons:
        out.print(describe_comparison(comparison))
    cached = sum(1 for r in run.records if r.cached)
    extra = f" (+{run.latency_calls} to measure single-request latency)" if run.latency_calls else ""
    calls, from_cache = f"{run.model_calls} model calls{extra}", f"{cached} from cache"
    if run.judge and run.judge_calls is not None:
        calls = (
            f"{run.model_calls} answering + {run.judge_calls} judge model calls{extra} · judge tokens "
            f"{run.judge_prompt_tokens:,} prompt + {run.judge_completion_tokens:,} completion"
        )
        from_cache = f"{cached} answers and {run.judge_cached} judgements from cache"
    out.print(f"[dim]{len(run.records)} records · {calls} · {from_cache} · {run.wall_s:.1f} s[/dim]")


def _judge_share(cost: CostResult) -> str:
    """The judge's share of the cost per question, apart from the answering model's."""
    money = (
        "no price"
        if cost.judge_cost_per_1k_questions is None
        else f"{cost.judge_cost_per_1k_questions:.4f} {cost.currency} / 1k q"
    )
    return (
        f"judge {cost.judge_model}: {cost.judge_calls_mean:.1f} calls/q, "
        f"{cost.judge_prompt_tokens_mean:,.0f} + {cost.judge_completion_tokens_mean:,.0f} tokens/q, "
        f"{money} ({cost.judge_price_source}); "
        "not in the cost above"
    )


def describe_comparison(c: Comparison) -> str:
    if c.diff is None:
        return f"{c.a} vs {c.b} on {c.metric}: no items scored by both"
    interval = f" (95% CI {c.low:+.3f}..{c.high:+.3f})" if c.low is not None and c.high is not None else ""
    p = f", p={c.p_value:.3g}" if c.p_value is not None else ""
    significant = c.p_value is not None and c.p_value < 0.05
    verdict = (
        f"{c.a} is {'better' if c.diff > 0 else 'worse'} than {c.b}"
        if significant
        else "no significant difference"
    )
    return f"{c.a} - {c.b} on {c.metric}: {c.diff:+.3f}{interval}{p}, {c.test}, n={c.n}: {verdict}"


# ---- runs ---------------------------------------------------------------------------------------
def _store(config: Path | None, home: Path | None) -> RunStore:
    from evaluation.store import RunStore

    return RunStore(settings_from(config, home).db_path)


@runs_app.command("list")
def runs_list(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """The newest runs: id, suite, strategies, status, main scores."""
    with _store(config, home) as store:
        rows = store.list_runs(limit=limit, suite=suite)
    if not rows:
        console().print("no runs yet: `ladder eval SUITE` makes one")
        return
    table_rows = []
    for row in rows:
        scores = ""
        if row["summary"]:
            parts = []
            for s in row["summary"]["strategies"]:
                first = next(iter(s["metrics"].values()), None)
                if first is not None:
                    parts.append(f"{s['strategy']}: {first['label']} {_num(first['mean'])}")
            scores = "; ".join(parts)
        status = row["status"] + ("" if row["status"] != "complete" or not row["summary"]
                                  or not row["summary"]["failures"] else " (missed)")  # fmt: skip
        table_rows.append([row["run_id"], row["created"].replace("T", " ")[:16], escape(row["suite"]),
                           ", ".join(row["strategies"]), escape(row["model"] or ""), status,
                           str(row["records"]), escape(scores)])  # fmt: skip
    # On a narrow terminal the run id (it holds the date and time) and the status stay whole;
    # the creation time goes first, then items, model and strategies.
    columns = [Col("run", key=True), Col("created", drop=5, key=True), Col("suite", key=True),
               Col("strategies", drop=2), Col("model", drop=3), Col("status", key=True),
               Col("items", drop=4, justify="right"), Col("scores", drop=1, min_width=16)]  # fmt: skip
    out = console()
    table = fitted_table("Evaluation runs", columns, table_rows, out.width)
    out.print(table)


@runs_app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="Run id (a unique prefix, or `latest`).")],
    report: Annotated[list[Path] | None, typer.Option("--report", help="Also write a report file.")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """A run's scores, comparisons and failures; optionally write its report again."""
    from evaluation.report import write_report

    with _store(config, home) as store:
        result = store.load_run(run)
    if result.status != "complete":
        console().print(
            f"run {result.run_id} is {result.status}: {len(result.records)} records so far"
            + (f"; error: {escape(result.error)}" if result.error else "")
            + " (re-run the same `ladder eval` to resume it)"
        )
        return
    print_run(result)
    for path in report or []:
        console().print(f"[dim]report: {write_report(result, path)}[/dim]")


@runs_app.command("compare")
def runs_compare(
    run_a: Annotated[str, typer.Argument(help="Run A.")],
    run_b: Annotated[str, typer.Argument(help="Run B (the baseline).")],
    strategy: Annotated[str | None, typer.Option(help="Strategy label, when a run has several.")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """A minus B on the items both scored: difference, 95% CI and p-value per metric."""
    from evaluation.aggregate import compare

    with _store(config, home) as store:
        a, b = store.load_run(run_a), store.load_run(run_b)
    label_a, label_b = _pick_strategy(a, strategy), _pick_strategy(b, strategy)
    records_a, records_b = a.records_for(label_a), b.records_for(label_b)
    labels = [
        m
        for m in dict.fromkeys(k for r in records_a for k in r.scores)
        if any(m in r.scores for r in records_b)
    ]
    if not labels:
        raise ConfigError("the two runs share no metric", hint="compare runs of the same suite")
    name_a, name_b = f"{a.run_id[-6:]}:{label_a}", f"{b.run_id[-6:]}:{label_b}"
    for comparison in compare(name_a, name_b, records_a, records_b, labels):
        console().print(describe_comparison(comparison))


def _pick_strategy(run: RunResult, wanted: str | None) -> str:
    labels = list(dict.fromkeys(r.strategy for r in run.records))
    if wanted is not None:
        if wanted not in labels:
            raise ConfigError(
                f"run {run.run_id} has no strategy {wanted!r}", hint=f"it has: {', '.join(labels)}"
            )
        return wanted
    if len(labels) != 1:
        raise ConfigError(
            f"run {run.run_id} has strategies {', '.join(labels)}", hint="pick one with --strategy"
        )
    return labels[0]


@runs_app.command("rm")
def runs_rm(run: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Delete a run and its records (the answer cache stays)."""
    with _store(config, home) as store:
        run_id = store.delete_run(run)
    console().print(f"deleted run {run_id}")


@runs_app.command("clear-cache")
def runs_clear_cache(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Forget every cached answer and judgement (runs stay)."""
    with _store(config, home) as store:
        answers, judged = store.clear_cache()
    console().print(f"cleared {answers} cached answers and {judged} cached judgements")
