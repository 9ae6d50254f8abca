"""The Markdown report: for a terminal, a CI log, or a pull-request comment.

User text (questions, answers, contexts) is HTML-escaped too, because the places that
render Markdown (GitHub, GitLab, IDEs) also render raw HTML in it.
"""

from __future__ import annotations

import html

from evaluation.report import common as c
from evaluation.results import MetricResult, RunResult, StrategyResult

MARK = {"pass": "✅", "fail": "❌"}


def render_markdown(run: RunResult, worst: int = 10) -> str:
    out: list[str] = [f"# Ladder evaluation: {_cell(run.suite)}", ""]
    out += _table(["", ""], [[f"**{k}**", _cell(v)] for k, v in c.header_rows(run)])
    if run.error:
        out += ["", "## Error", "", *_quote(run.error)]
    out += _summary(run)
    if run.failures:
        out += ["", "## Failures", ""] + [f"- ❌ {_text(f)}" for f in run.failures]
    out += _cost(run)
    out += _comparisons(run)
    out += _breakdown(run)
    out += _drill_down(run, worst)
    return "\n".join(out).rstrip() + "\n"


# ---- text ---------------------------------------------------------------------------------
def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _cell(value: str) -> str:
    """Text for a table cell: escaped, one line, no column breaks."""
    return _text(value).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _quote(value: str) -> list[str]:
    """Text as a block quote, line breaks kept."""
    return [f"> {line}".rstrip() for line in _text(value).splitlines() or [""]]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# ---- sections -----------------------------------------------------------------------------
def metric_cell(metric: MetricResult | None) -> str:
    if metric is None:
        return "—"
    parts = [c.num(metric.mean)]
    if interval := c.ci(metric.low, metric.high):
        parts.append(interval)
    counts = f"n={metric.n}" + (f", n/a {metric.n_na}" if metric.n_na else "")
    parts.append(f"({counts})")
    state = c.threshold_state(metric)
    if state:
        parts.append(f"{MARK[state]} {c.bound_text(metric)}")
    return " ".join(parts)


def _summary(run: RunResult) -> list[str]:
    labels = c.metric_labels(run)
    if not run.strategies or not labels:
        return ["", "## Summary", "", "No strategy was scored."]
    main = c.main_metric(run)
    header = ["strategy", *[_cell(c.metric_heading(run, label, main)) for label in labels]]
    rows = [
        [_cell(s.strategy), *[metric_cell(s.metrics.get(label)) for label in labels]] for s in run.strategies
    ]
    out = ["", "## Summary", "", "Mean [95% bootstrap CI] (items scored, n/a).", "", *_table(header, rows)]
    na_lines = [
        f"- {_text(s.strategy)} / {_text(m.label)}: {_text(c.na_reasons(m.na_reasons))}"
        for s in run.strategies
        for m in s.metrics.values()
        if m.na_reasons
    ]
    if na_lines:
        out += ["", "n/a reasons:", "", *na_lines]
    return out


def _cost(run: RunResult) -> list[str]:
    rows = []
    for s in run.strategies:
        if (cost := s.cost) is None:
            continue
        rows.append(
            [
                _cell(s.strategy),
                _cell(s.model_id or "n/a"),
                f"{cost.questions:,}",
                f"{cost.prompt_tokens_mean:,.1f}",
                f"{cost.completion_tokens_mean:,.1f}",
                f"{cost.model_calls_mean:.2f}",
                *c.latency_cells(cost),
                c.money(cost.cost_per_1k_questions, cost.currency),
                _cell(cost.price_source or "n/a"),
                f"{cost.cached_items:,}",
            ]
        )
    if not rows:
        return []
    header = ["strategy", "model", "questions", "prompt tok/q", "completion tok/q", "calls/q", *c.COST_HEADER]
    header += ["cost / 1,000 q", "price source", "cached"]
    notes = [f"- {_text(c.COMPUTE_NOTE)}"]
    notes += [f"- {_cell(s.strategy)}: {_text(c.latency_how(s.cost))}" for s in run.strategies if s.cost]
    out = ["", "## Cost", "", *_table(header, rows), "", *notes]
    if judge_rows := c.judge_cost_rows(run):
        judge_table = _table(c.JUDGE_COST_HEADER, [[_cell(cell) for cell in row] for row in judge_rows])
        out += ["", "### The judge", "", *judge_table, "", f"- {_text(c.JUDGE_COST_NOTE)}"]
    return out


def _comparisons(run: RunResult) -> list[str]:
    if not run.comparisons:
        return []
    header = ["metric", "a − b", "diff", "95% CI", "p", "n", "test", "reading"]
    rows = [
        [
            _cell(k.metric),
            f"{_cell(k.a)} − {_cell(k.b)}",
            c.num(k.diff),
            c.ci(k.low, k.high) or "n/a",
            c.p_text(k.p_value),
            str(k.n),
            _cell(k.test),
            _cell(c.comparison_reading(k, c.higher_is_better(run, k.metric))),
        ]
        for k in run.comparisons
    ]
    return ["", "## Paired comparisons", "", *_table(header, rows)]


def _group_cell(strategy: StrategyResult, by: str, group: str) -> str:
    result = strategy.breakdown.get(by, {}).get(group)
    if result is None:
        return "—"
    return f"{c.num(result.mean)} (n={result.n}" + (f", n/a {result.n_na})" if result.n_na else ")")


def _breakdown(run: RunResult) -> list[str]:
    out: list[str] = []
    for by in c.breakdown_kinds(run):
        header = [by, *[_cell(s.strategy) for s in run.strategies]]
        rows = [
            [_cell(g), *[_group_cell(s, by, g) for s in run.strategies]] for g in c.breakdown_groups(run, by)
        ]
        out += ["", f"## {_cell(c.breakdown_metric(run))} by {_cell(by)}", "", *_table(header, rows)]
    return out


def _drill_down(run: RunResult, worst: int) -> list[str]:
    metric = c.main_metric(run)
    if not run.records or worst <= 0:
        return []
    higher = c.higher_is_better(run, metric) if metric else True
    order = "lowest" if higher else "highest"
    out = ["", f"## Worst items (by {_text(metric or 'score')}, {order} first; n/a first)"]
    for strategy, records in c.records_by_strategy(run.records).items():
        items = c.worst_items(records, metric, worst, higher)
        out += ["", f"### {_text(strategy)}: {len(items)} of {len(records):,} items"]
        for rank, item in enumerate(items, 1):
            out += ["", *_item(rank, item, metric)]
    return out


def _item(rank: int, item: c.WorstItem, metric: str | None) -> list[str]:
    r = item.record
    marks = (" · 🤖 generated" if r.generated else "") + (" · cached" if r.cached else "")
    where = f" · {_text(r.source)}" if r.source else ""
    value = c.score_text(item.value, item.reason)
    out = [f"#### {rank}. `{_text(r.item_id)}` · {_text(metric or 'score')} {_text(value)}{where}{marks}", ""]
    out += ["**Question**", "", *_quote(r.user_input), ""]
    if r.choices:
        out += (
            ["**Choices**", ""] + [f"- {chr(65 + i)}. {_cell(ch)}" for i, ch in enumerate(r.choices)] + [""]
        )
    out += ["**Answer**", "", *_quote(r.response if r.response is not None else "(no response)"), ""]
    out += ["**Reference**", "", *_quote(r.reference if r.reference is not None else "(none)"), ""]
    if r.retrieved_contexts:
        shown = r.retrieved_contexts[: c.MAX_CONTEXTS]
        out += [f"**Retrieved contexts** ({len(r.retrieved_contexts)})", ""]
        out += [f"{i}. {_cell(c.clip(text))}" for i, text in enumerate(shown, 1)]
        if len(r.retrieved_contexts) > len(shown):
            out.append(f"\n… and {len(r.retrieved_contexts) - len(shown)} more")
        out.append("")
    scores = "; ".join(f"{_text(k)} {_text(c.score_text(s.value, s.reason))}" for k, s in r.scores.items())
    out.append(f"**Scores**: {scores or 'none'}")
    return out
