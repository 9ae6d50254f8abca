"""The HTML report: one self-contained file (inline CSS and SVG, no script, no remote
resource), so it opens offline, from a CI artifact or an e-mail attachment alike.

Every piece of user or model text goes through ``_e`` (``html.escape``).
"""

from __future__ import annotations

from collections.abc import Collection
from html import escape

from evaluation.report import common as c
from evaluation.report.svg import Bar, bar_chart, color, grouped_chart
from evaluation.results import COMPLETE, MetricResult, RunResult

PROMPT_CHARS = 4000

CSS = """
:root { --fg:#1d2330; --muted:#5b6474; --line:#dde1e8; --bg:#f6f7f9; --ok:#137333; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif; }
main { max-width:1200px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:22px; margin:0 12px 0 0; display:inline-block; vertical-align:middle; }
h2 { font-size:17px; margin:14px 0 10px; padding-bottom:4px; border-bottom:1px solid var(--line); }
h3 { font-size:15px; margin:20px 0 8px; }
section, .facts { background:#fff; border:1px solid var(--line); border-radius:8px; padding:4px 18px 16px;
  margin-top:16px; }
.badge { display:inline-block; padding:3px 10px; border-radius:12px; font-weight:600; font-size:13px;
  vertical-align:middle; color:#fff; }
.badge.ok { background:var(--ok); } .badge.bad { background:var(--bad); } .badge.warn { background:#8a5a00; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; padding:12px 18px; }
.facts dt { color:var(--muted); } .facts dd { margin:0; overflow-wrap:anywhere; }
table { border-collapse:collapse; width:100%; margin:6px 0; }
th, td { text-align:left; padding:6px 9px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f0f2f5; font-weight:600; }
.scroll { overflow-x:auto; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.num { white-space:nowrap; }
.mean { font-weight:600; font-variant-numeric:tabular-nums; }
.ci, .small, .muted { color:var(--muted); font-size:12px; }
.pass { color:var(--ok); font-weight:600; } .fail { color:var(--bad); font-weight:600; }
.na { color:var(--muted); font-style:italic; }
.judge-warn { color:#8a5a00; font-size:12px; }
.charts { display:flex; flex-wrap:wrap; gap:12px 28px; margin:14px 0 4px; }
.error { background:#fdecea; border:1px solid #f5c2bd; padding:10px 14px; border-radius:6px;
  white-space:pre-wrap; font-family:ui-monospace, monospace; font-size:13px; }
ul.failures li { color:var(--bad); }
details.item { border:1px solid var(--line); border-radius:6px; margin:6px 0; background:#fff; }
details.item > summary { cursor:pointer; padding:7px 10px; list-style-position:inside; }
details.item[open] > summary { border-bottom:1px solid var(--line); background:#fafbfc; }
.item .body { padding:8px 14px 12px; }
.item dl { display:grid; grid-template-columns:110px 1fr; gap:6px 14px; margin:0; }
.item dt { color:var(--muted); font-weight:600; } .item dd { margin:0; }
.text { white-space:pre-wrap; overflow-wrap:anywhere; }
.item ol { margin:0; padding-left:22px; } .item ol li { margin-bottom:4px; }
.tag { display:inline-block; font-size:11px; padding:1px 7px; border-radius:9px; background:#e8eaf6;
  color:#303f9f; margin-left:6px; }
.tag.gen { background:#fff3e0; color:#8a4b00; }
.score { font-variant-numeric:tabular-nums; font-weight:600; margin:0 6px; }
.preview { color:var(--muted); }
code { font-family:ui-monospace, monospace; font-size:12.5px; }
footer { margin-top:28px; color:var(--muted); font-size:12px; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def render_html(run: RunResult, worst: int = 20) -> str:
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>Ladder evaluation: {_e(run.suite)} ({_e(run.run_id)})</title>\n<style>{CSS}</style>\n",
        "</head>\n<body>\n<main>\n",
        _header(run),
        _summary(run),
        _failures(run),
        _cost(run),
        _comparisons(run),
        _breakdown(run),
        _drill_down(run, worst),
        f"<footer>Ladder evaluation report · run {_e(run.run_id)}</footer>\n</main>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]], numeric: Collection[int] = ()) -> str:
    """``header`` and ``rows`` are HTML already; ``numeric`` column indices align right."""

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{v}</td>" for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>\n'


def _header(run: RunResult) -> str:
    badge = "ok" if run.status == COMPLETE and not run.failures else "bad"
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in c.header_rows(run))
    out = (
        f'<header><h1>Ladder evaluation: {_e(run.suite)}</h1><span class="badge {badge}">'
        f'{_e(c.status_text(run))}</span></header>\n<dl class="facts">{facts}</dl>\n'
    )
    if run.error:
        out += f'<section><h2>Error</h2><div class="error">{_e(run.error)}</div></section>\n'
    return out


def _metric_cell(metric: MetricResult | None) -> str:
    if metric is None:
        return '<span class="na">—</span>'
    out = f'<span class="mean">{c.num(metric.mean)}</span>'
    if interval := c.ci(metric.low, metric.high):
        out += f' <span class="ci">{interval}</span>'
    out += (
        f'<br><span class="small">n={metric.n}' + (f", n/a {metric.n_na}" if metric.n_na else "") + "</span>"
    )
    state = c.threshold_state(metric)
    if state:
        word = "✓ pass" if state == "pass" else "✗ FAIL"
        out += f' <span class="{state}">{word} {_e(c.bound_text(metric))}</span>'
    return out


def _agreement(run: RunResult, label: str) -> str:
    """The judge's agreement under a judged metric's title (muted; a warning when below the bar)."""
    text = c.agreement_text(run, label)
    if text is None:
        return ""
    return f'<br><span class="{"judge-warn" if c.agreement_warns(run, label) else "muted"}">{_e(text)}</span>'


def _summary(run: RunResult) -> str:
    labels = c.metric_labels(run)
    if not run.strategies or not labels:
        return "<section><h2>Summary</h2><p>No strategy was scored.</p></section>\n"
    main = c.main_metric(run)
    header = [
        "strategy",
        *[
            _e(lbl) + (' <span class="muted">(main)</span>' if lbl == main else "") + _agreement(run, lbl)
            for lbl in labels
        ],
    ]
    rows = [[_e(s.strategy), *[_metric_cell(s.metrics.get(lbl)) for lbl in labels]] for s in run.strategies]
    out = ["<section><h2>Summary</h2>", '<p class="muted">Mean [95% bootstrap CI], items scored and n/a.</p>']
    out.append(_table(header, rows))
    charts = []
    for label in labels:
        bars, threshold = [], None
        for i, s in enumerate(run.strategies):
            m = s.metrics.get(label)
            if m is None:
                continue
            threshold = m.threshold if m.threshold is not None else threshold
            bars.append(Bar(s.strategy, m.mean, m.low, m.high, color(i)))
        charts.append(bar_chart(label, bars, threshold))
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    na_items = [
        f"<li>{_e(s.strategy)} / {_e(m.label)}: {_e(c.na_reasons(m.na_reasons))}</li>"
        for s in run.strategies
        for m in s.metrics.values()
        if m.na_reasons
    ]
    if na_items:
        out.append(f"<h3>n/a reasons</h3><ul>{''.join(na_items)}</ul>")
    return "".join(out) + "</section>\n"


def _failures(run: RunResult) -> str:
    if not run.failures:
        return ""
    items = "".join(f"<li>{_e(f)}</li>" for f in run.failures)
    return f'<section><h2>Failures</h2><ul class="failures">{items}</ul></section>\n'


def _cost(run: RunResult) -> str:
    rows = []
    for s in run.strategies:
        if (cost := s.cost) is None:
            continue
        rows.append(
            [
                _e(s.strategy),
                _e(s.model_id or "n/a"),
                f"{cost.questions:,}",
                f"{cost.prompt_tokens_mean:,.1f}",
                f"{cost.completion_tokens_mean:,.1f}",
                f"{cost.model_calls_mean:.2f}",
                *c.latency_cells(cost),
                _e(c.money(cost.cost_per_1k_questions, cost.currency)),
                _e(cost.price_source or "n/a"),
                f"{cost.cached_items:,}",
            ]
        )
    if not rows:
        return ""
    header = ["strategy", "model", "questions", "prompt tok/q", "completion tok/q", "calls/q"]
    header += [*c.COST_HEADER, "cost / 1,000 q", "price source", "cached"]
    table = _table(header, rows, numeric={2, 3, 4, 5, 6, 7, 8, 9, 11})
    notes = [_e(c.COMPUTE_NOTE)]
    notes += [f"{_e(s.strategy)}: {_e(c.latency_how(s.cost))}" for s in run.strategies if s.cost]
    items = "".join(f"<li>{n}</li>" for n in notes)
    judge = ""
    if judge_rows := c.judge_cost_rows(run):
        judge_table = _table(
            c.JUDGE_COST_HEADER,
            [[_e(cell) for cell in row] for row in judge_rows],
            numeric=c.JUDGE_COST_NUMERIC,
        )
        judge = f'<h3>The judge</h3>{judge_table}<ul class="notes"><li>{_e(c.JUDGE_COST_NOTE)}</li></ul>'
    return f'<section><h2>Cost</h2>{table}<ul class="notes">{items}</ul>{judge}</section>\n'


def _comparisons(run: RunResult) -> str:
    if not run.comparisons:
        return ""
    rows = [
        [
            _e(k.metric),
            f"{_e(k.a)} − {_e(k.b)}",
            c.num(k.diff),
            c.ci(k.low, k.high) or "n/a",
            c.p_text(k.p_value),
            str(k.n),
            _e(k.test),
            _e(c.comparison_reading(k, c.higher_is_better(run, k.metric))),
        ]
        for k in run.comparisons
    ]
    header = ["metric", "a − b", "diff", "95% CI", "p", "n", "test", "reading"]
    return f"<section><h2>Paired comparisons</h2>{_table(header, rows, numeric={2, 3, 4, 5})}</section>\n"


def _breakdown(run: RunResult) -> str:
    out = []
    metric = c.breakdown_metric(run)
    for by in c.breakdown_kinds(run):
        groups = c.breakdown_groups(run, by)
        rows, series = [], []
        for s in run.strategies:
            values = [s.breakdown.get(by, {}).get(g) for g in groups]
            series.append((s.strategy, [v.mean if v else None for v in values]))
        for g in groups:
            cells = []
            for s in run.strategies:
                r = s.breakdown.get(by, {}).get(g)
                cells.append(
                    '<span class="na">—</span>'
                    if r is None
                    else f'{c.num(r.mean)} <span class="small">n={r.n}'
                    + (f", n/a {r.n_na}" if r.n_na else "")
                    + "</span>"
                )
            rows.append([_e(g), *cells])
        header = [_e(by), *[_e(s.strategy) for s in run.strategies]]
        chart = grouped_chart(f"{metric} by {by}", groups, series)
        out.append(
            f"<section><h2>{_e(metric)} by {_e(by)}</h2>"
            f'<div class="charts">{chart}</div>{_table(header, rows)}</section>\n'
        )
    return "".join(out)


def _drill_down(run: RunResult, worst: int) -> str:
    metric = c.main_metric(run)
    if not run.records or worst <= 0:
        return ""
    higher = c.higher_is_better(run, metric) if metric else True
    order = "lowest" if higher else "highest"
    out = [f'<section><h2>Worst items</h2><p class="muted">By {_e(metric or "score")}, {order} first; ']
    out.append("items with no score (n/a) lead, with the reason. Click an item for the details.</p>")
    for strategy, records in c.records_by_strategy(run.records).items():
        items = c.worst_items(records, metric, worst, higher)
        out.append(
            f'<h3>{_e(strategy)} <span class="muted">{len(items)} of {len(records):,} items</span></h3>'
        )
        out += [_item(rank, item, metric) for rank, item in enumerate(items, 1)]
    return "".join(out) + "</section>\n"


def _item(rank: int, item: c.WorstItem, metric: str | None) -> str:
    r = item.record
    value_cls = "score na" if c.is_na(item.value) else "score"
    value = c.score_text(item.value, item.reason)
    tags = '<span class="tag gen">generated</span>' if r.generated else ""
    tags += '<span class="tag">cached</span>' if r.cached else ""
    summary = (
        f'<summary><span class="muted">#{rank}</span> <code>{_e(r.item_id)}</code>'
        f'<span class="{value_cls}">{_e(metric or "score")} {_e(value)}</span>{tags} '
        f'<span class="preview">{_e(c.clip(" ".join(r.user_input.split()), 110))}</span></summary>'
    )
    rows = [("Question", f'<div class="text">{_e(r.user_input)}</div>')]
    if r.choices:
        options = "".join(f"<li>{_e(choice)}</li>" for choice in r.choices)
        rows.append(("Choices", f'<ol type="A">{options}</ol>'))
    answer = _e(r.response) if r.response is not None else '<span class="na">(no response)</span>'
    reference = _e(r.reference) if r.reference is not None else '<span class="na">(none)</span>'
    rows += [
        ("Answer", f'<div class="text">{answer}</div>'),
        ("Reference", f'<div class="text">{reference}</div>'),
    ]
    if r.retrieved_contexts:
        shown = r.retrieved_contexts[: c.MAX_CONTEXTS]
        contexts = "".join(f'<li class="text">{_e(c.clip(text))}</li>' for text in shown)
        more = len(r.retrieved_contexts) - len(shown)
        extra = f'<span class="muted">… and {more} more</span>' if more > 0 else ""
        rows.append((f"Retrieved ({len(r.retrieved_contexts)})", f"<ol>{contexts}</ol>{extra}"))
    scores = "; ".join(
        f'{_e(k)} <span class="{"na" if c.is_na(s.value) else "mean"}">'
        f"{_e(c.score_text(s.value, s.reason))}</span>"
        for k, s in r.scores.items()
    )
    rows.append(("Scores", scores or '<span class="na">none</span>'))
    usage = f"{r.prompt_tokens:,} prompt + {r.completion_tokens:,} completion tokens, {r.model_calls} call(s)"
    usage += f", {c.seconds(r.compute_s)} compute (its batch's wall time / batch size)"
    rows.append(("Usage", _e(usage)))
    if r.source:
        rows.append(("Source", f"<code>{_e(r.source)}</code>"))
    if r.prompt:
        prompt = _e(c.clip(r.prompt, PROMPT_CHARS))
        rows.append(
            (
                "Prompt",
                f'<details><summary>show</summary><div class="text"><code>{prompt}</code></div></details>',
            )
        )
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<details class="item">{summary}<div class="body"><dl>{body}</dl></div></details>\n'
