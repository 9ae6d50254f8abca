"""A deployment as words, a table, Markdown and self-contained HTML, and how to serve its choice.

The table has one row per format, cheapest first: the test-split estimate of every target
(mean and CI at the decision's confidence, ✓ when the bound clears it), and what the format
costs: artifact size, peak RSS, load time, single-stream decode tokens/s, batched questions/s,
cost per 1,000 questions. Number formats come from ``evaluation.report`` so a deployment reads
like a decision.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from assistant.errors import ConfigError
from evaluation.decide.text import say
from evaluation.deploy.result import MEASURED, Deployment, FormatResult
from evaluation.report import common as c

Table = tuple[list[str], list[list[str]]]
DISTILL = (
    "When a smaller model must replace this one (no format of it is cheap enough), distil: "
    "`ladder finetune synthesize` has this model write training data for a smaller one "
    "(docs/fine-tuning.md), then decide and deploy again."
)


def size(value: float | None) -> str:
    if value is None:
        return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return "n/a"  # pragma: no cover


def _rate(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.1f} {unit}"


def _estimate(result: FormatResult, metric: str) -> str:
    est = result.test.metrics.get(metric) if result.test else None
    if est is None:
        return "—"
    mark = "" if est.bound_passes is None else (" ✓" if est.bound_passes else " ✗")
    return f"{c.num(est.mean)} {c.ci(est.low, est.high)}{mark}".strip()


def format_table(deployment: Deployment) -> Table:
    metrics = [t.split()[0] for t in deployment.targets]
    header = ["format", "engine", "state", *metrics, "size", "peak RSS", "load", "decode",
              "batched", "cost / 1k q", "meets"]  # fmt: skip
    rows = []
    for r in deployment.formats:
        chosen = r.format == deployment.chosen
        name = f"**{r.format}**" if chosen else r.format
        if r.state != MEASURED:
            rows.append([name, r.engine, f"skipped: {r.note}", *["—"] * (len(header) - 3)])
            continue
        money = c.money(r.cost_per_1k, r.test.currency if r.test else "USD")
        rows.append([
            name, r.engine, r.state, *[_estimate(r, m) for m in metrics], size(r.size_bytes),
            size(r.peak_rss_bytes), c.seconds(r.load_s), _rate(r.decode_tokens_per_s, "tok/s"),
            _rate(r.throughput_qps, "q/s"), money, "yes" if r.meets else "no",
        ])  # fmt: skip
    return header, rows


def serve_commands(deployment: Deployment) -> list[str]:
    """How to serve the chosen format (empty when none met): by the deployment's name (the
    chosen format with its settings), then the same by model reference."""
    chosen = deployment.chosen_format()
    if chosen is None:
        return []
    env = " ".join(f"LADDER_{k.upper()}={shlex.quote(str(v))}" for k, v in sorted(chosen.settings.items()))
    command = f"ladder serve --model {shlex.quote(chosen.model_ref)}"
    return [
        f"ladder serve --deployment {shlex.quote(deployment.name)}",
        f"{env} {command}".strip(),
        f"{env} ladder ask --model {shlex.quote(chosen.model_ref)} ...".strip(),
    ]


def verdict_lines(deployment: Deployment) -> list[str]:
    """The verdict in words, then why each format missed, then what to do next."""
    level = f"{deployment.confidence:.0%}"
    lines = []
    chosen = deployment.chosen_format()
    if chosen is not None:
        lines.append(
            f"Deploy {chosen.format}: the cheapest format whose test-split scores meet every target "
            f"({', '.join(deployment.targets)}) at the {level} confidence bound."
        )
    else:
        lines.append(f"No format met every target at the {level} confidence bound on the test split.")
    for r in deployment.formats:
        if r.state == MEASURED and not r.meets:
            why = "; ".join(say(m, deployment.language) for m in r.misses)
            lines.append(f"{r.format} misses: {why}")
    lines += cheaper_in_batch(deployment)
    if deployment.stop_at_first:
        lines.append("Formats dearer than the first that met were not built (--stop-at-first).")
    else:
        lines.append(
            "Every format was measured, also those dearer than the choice: the table is the "
            "finding (what a cheaper format costs in quality, what a dearer one buys); "
            "--stop-at-first skips them."
        )
    commands = serve_commands(deployment)
    if commands:
        lines.append(f"Serve it: {commands[0]} (the same as: {commands[1]})")
    if chosen is not None and deployment.strategy:
        lines.append(f"Ask it as the decision did: {json.dumps(deployment.strategy, ensure_ascii=False)}")
    lines.append(DISTILL)
    return lines


def cheaper_in_batch(deployment: Deployment) -> list[str]:
    """Of the formats that also meet and cost less per 1,000 questions in the batched test run than
    the choice, the cheapest: the order is by what a format costs to serve (memory, one stream),
    and an engine that answers one question at a time can lose on a batch. Said, not hidden."""
    chosen = deployment.chosen_format()
    if chosen is None or chosen.cost_per_1k is None:
        return []
    currency = chosen.test.currency if chosen.test else "USD"
    cheaper = [
        r
        for r in deployment.formats
        if r is not chosen and r.meets and r.cost_per_1k is not None and r.cost_per_1k < chosen.cost_per_1k
    ]
    if not cheaper:
        return []
    r = min(cheaper, key=lambda f: f.cost_per_1k or 0.0)  # the cheapest of them, one line
    return [
        f"{r.format} also meets and cost less per 1,000 questions in the batched test run "
        f"({c.money(r.cost_per_1k, currency)} against {c.money(chosen.cost_per_1k, currency)}; "
        f"{_rate(r.throughput_qps, 'q/s')} against {_rate(chosen.throughput_qps, 'q/s')}): for batch "
        f"work it is the cheaper choice, at {size(r.peak_rss_bytes)} peak RSS against "
        f"{size(chosen.peak_rss_bytes)}."
    ]


def _facts(deployment: Deployment) -> list[tuple[str, str]]:
    cpu = deployment.machine.get("cpu", "?")
    simd = ", ".join(deployment.machine.get("simd", []))
    load = deployment.machine.get("load_average")
    return [
        ("decision", f"{deployment.decision_name} ({deployment.decision_id}), rung {deployment.rung}"),
        ("model", deployment.source_model),
        ("adapter", f"{deployment.adapter} (sha256 {deployment.adapter_sha256})" if deployment.adapter
         else "none"),
        ("test split", deployment.test_suite),
        ("targets", ", ".join(deployment.targets) + f" at {deployment.confidence:.0%}"),
        ("machine", f"{cpu} · {deployment.machine.get('cpu_count')} cores · {simd}"
         + (f" · load {load}" if load else "")),
        ("wall time", c.seconds(deployment.wall_s)),
    ]  # fmt: skip


def render_markdown(deployment: Deployment) -> str:
    from evaluation.report.markdown import _cell, _table

    out = [f"# Ladder deployment: {_cell(deployment.name)}", ""]
    out += _table(["", ""], [[f"**{k}**", _cell(v)] for k, v in _facts(deployment)])
    out += ["", "## Formats (held-out test split, cheapest first)", ""]
    header, rows = format_table(deployment)
    out += _table(header, [[_cell(v) for v in row] for row in rows])
    out += ["", "## Verdict", ""] + [f"- {_cell(line)}" for line in verdict_lines(deployment)]
    return "\n".join(out).rstrip() + "\n"


def render_html(deployment: Deployment) -> str:
    from evaluation.report.html_page import CSS, _e, _table

    badge = "ok" if deployment.passed else "bad"
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _facts(deployment))
    header, rows = format_table(deployment)
    table = _table([_e(h) for h in header], [[_e(v).replace("**", "") for v in row] for row in rows])
    verdict = "".join(f"<li>{_e(line)}</li>" for line in verdict_lines(deployment))
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(deployment.language)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Ladder deployment: {_e(deployment.name)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n<header><h1>Ladder deployment: {_e(deployment.name)}</h1>"
        f'<span class="badge {badge}">{_e(deployment.chosen or deployment.status)}</span></header>\n'
        f'<dl class="facts">{facts}</dl>\n'
        f"<section><h2>Formats (held-out test split, cheapest first)</h2>\n{table}</section>\n"
        f"<section><h2>Verdict</h2>\n<ul>{verdict}</ul>\n</section>\n"
        f"<footer>Ladder deployment · {_e(deployment.created)}</footer>\n</main>\n</body>\n</html>\n"
    )


def write_reports(deployment: Deployment, out: Path) -> list[Path]:
    """``deployment.md`` and ``deployment.html`` into ``out``."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file", hint="give a folder for the reports")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "deployment.md", out / "deployment.html"]
    paths[0].write_text(render_markdown(deployment), encoding="utf-8")
    paths[1].write_text(render_html(deployment), encoding="utf-8")
    return paths
