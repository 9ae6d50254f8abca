"""A decision as Markdown, self-contained HTML (with charts) or JSON.

Both text renderers lay out the same sections, built once here from the stored ``Decision``:
the verdict in plain words, the rung table (every metric with its CI and target mark, cost
per 1,000 questions, single-request p95 latency, tokens per question), the held-out confirmation, the
paired comparisons, the gaps, readiness and the forgetting check. Number formats and charts
come from ``evaluation.report`` so decisions read like evaluation reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from assistant.errors import ConfigError
from evaluation.decide.result import EVALUATED, MET, TIE, Decision, Estimate, RungResult, SuiteScores
from evaluation.decide.route import route_rows
from evaluation.decide.text import explain, gap_lines, note
from evaluation.decide.text_search import search_table
from evaluation.decide.warnings import warning_lines
from evaluation.report import common as c

Table = tuple[list[str], list[list[str]]]
TITLES = {
    "en": {
        "rungs": "Rungs (dev split)",
        "test": "Held-out test split",
        "pairs": "Paired comparisons",
        "gaps": "Gap diagnosis",
        "ready": "Fine-tuning readiness",
        "forget": "Forgetting check",
        "route": "Division of labour (route)",
        "why": "Why",
        "estimates": "Training time and cost (estimates)",
        "rag": "RAG misses by cause (item by item)",
        "search": "Rung search (every attempt, on the tuning slice)",
        "curve": "Learning curve (the same dev items at each size)",
        "warnings": "Warnings",
    },
    "zh": {
        "rungs": "各级结果（开发集）",
        "test": "留出测试集",
        "pairs": "配对比较",
        "gaps": "差距诊断",
        "ready": "微调就绪检查",
        "forget": "遗忘检查",
        "route": "分工（route）",
        "why": "理由",
        "estimates": "训练时间与成本（估算）",
        "rag": "RAG 错误按原因分类（逐题）",
        "search": "各级配置搜索（每次尝试，调参切片上）",
        "curve": "学习曲线（每种规模使用相同的开发题）",
        "warnings": "警告",
    },
}


def _estimate(est: Estimate | None) -> str:
    if est is None:
        return "—"
    if est.not_applicable:
        return "n/a (not applicable)"
    text = f"{c.num(est.mean)} {c.ci(est.low, est.high)}".strip()
    if est.target is not None:
        text += " ✓" if est.bound_passes else " ✗"
    return text


def _metrics(decision: Decision) -> list[str]:
    targets = [t.split(" ")[0] for t in decision.targets]
    seen = [m for r in decision.rungs if r.dev for m in r.dev.metrics]
    return list(dict.fromkeys([*targets, *seen]))


def _money(scores: SuiteScores | None) -> str:
    return "—" if scores is None else c.money(scores.cost_per_1k, scores.currency)


def _tokens(scores: SuiteScores | None) -> str:
    return (
        "—" if scores is None or scores.tokens_per_question is None else f"{scores.tokens_per_question:.0f}"
    )


def rung_table(decision: Decision) -> Table:
    metrics = _metrics(decision)
    header = ["rung", "state", *metrics, "cost / 1k q", "single-request p95", "tokens / q", "meets"]
    rows = []
    for rung in decision.rungs:
        dev = rung.dev
        state = rung.state if not rung.note else f"{rung.state}: {note(rung.note, decision.language)}"
        meets = ("✓" if rung.meets else "✗") if rung.state == EVALUATED else "—"
        label = f"**{rung.label}**" if rung.label == decision.recommended else rung.label
        rows.append(
            [
                label,
                state,
                *[_estimate(dev.metrics.get(m)) if dev else "—" for m in metrics],
                _money(dev),
                c.seconds(dev.p95_latency_s) if dev else "—",
                _tokens(dev),
                meets,
            ]
        )
    return header, rows


def test_table(decision: Decision) -> Table:
    metrics = _metrics(decision)
    rows = [
        [r.label, *[_estimate(r.test.metrics.get(m)) for m in metrics], str(r.test.items)]
        for r in decision.rungs
        if r.test is not None
    ]
    return ["rung", *metrics, "items"], rows


def pairs_table(decision: Decision) -> Table:
    rows = [
        [
            f"{p.a} − {p.b}",
            p.metric,
            c.num(p.diff),
            c.ci(p.low, p.high),
            c.p_text(p.p_value),
            p.test,
            str(p.n),
            ("✓ " + p.a if p.a_better else "✓" if p.significant else "no"),
        ]
        for p in decision.comparisons
    ]
    return ["pair", "metric", "difference", "CI", "p", "test", "n", "significant"], rows


def readiness_table(decision: Decision) -> Table:
    ready = decision.readiness
    rows = [
        [ch.name, "✓" if ch.ok else "✗", str(ch.value), ch.rule] for ch in (ready.checks if ready else [])
    ]
    return ["check", "ok", "value", "rule"], rows


def estimates_table(decision: Decision) -> Table:
    ready = decision.readiness
    rows = []
    for e in ready.estimates if ready else []:
        speed = "n/a" if e.get("tokens_per_s") is None else f"{e['tokens_per_s']:,.0f}"
        hours = e.get("hours")
        rows.append(
            [
                e["where"],
                speed,
                "n/a" if hours is None else c.seconds(hours * 3600),
                c.money(e.get("cost"), "USD"),
                e.get("source", ""),
            ]
        )
    return ["where", "tokens/s", "time", "cost", "basis"], rows


RAG_HEADERS = {
    "en": (["rung", "passage", "answer right", "answer wrong"], "retrieved", "not retrieved", "e.g."),
    "zh": (["级", "段落", "答对", "答错"], "检索到", "未检索到", "例如"),
}


def rag_tables(decision: Decision, lang: str) -> Table:
    """The 2x2 table retrieved yes/no x answered right/wrong of each RAG rung the diagnosis read."""
    header, yes, no, eg = RAG_HEADERS.get(lang, RAG_HEADERS["en"])
    rows = []
    for table in (e for gap in decision.gaps for e in gap.evidence if e.code == "rag_table"):
        p = table.params

        def cell(key: str, p: dict[str, object] = p) -> str:
            ids = p.get(f"{key}_examples") or []
            shown = ", ".join(str(i) for i in ids) if isinstance(ids, list) else ""
            return f"{p.get(key)}" + (f" ({eg} {shown})" if shown else "")

        rows.append([str(p["rung"]), yes, cell("retrieved_right"), cell("retrieved_wrong")])
        rows.append([str(p["rung"]), no, cell("missed_right"), cell("missed_wrong")])
    return header, rows


CURVE_HEADERS = {
    "en": ["examples", "mean", "CI", "items"],
    "zh": ["样本数", "均值", "置信区间", "题数"],
}


def curve_table(decision: Decision, lang: str) -> Table:
    curve = decision.curve
    assert curve is not None
    rows = [
        [str(p.n), c.num(p.mean), f"[{c.num(p.low)}, {c.num(p.high)}]", str(curve.items)]
        for p in curve.points
    ]
    return CURVE_HEADERS.get(lang, CURVE_HEADERS["en"]), rows


def forgetting_rows(decision: Decision) -> list[str]:
    f = decision.forgetting
    if f is None:
        return []
    mark = "✓" if f.passed else "✗"
    return [
        f"{mark} {f.metric}: {c.num(f.before)} → {c.num(f.after)}, drop {c.num(f.drop)} "
        f"(allowed {f.max_drop:g}, {c.p_text(f.p_value)})"
    ]


def _sections(decision: Decision) -> list[tuple[str, Table | list[str]]]:
    lang = decision.language if decision.language in TITLES else "en"
    t = TITLES[lang]
    out: list[tuple[str, Table | list[str]]] = [
        (t["why"], explain(decision, lang, gaps=False)),
        (t["rungs"], rung_table(decision)),
    ]
    if decision.warnings:  # first: they qualify everything below
        out.insert(0, (t["warnings"], warning_lines(decision, lang)))
    attempts = search_table(decision, lang)
    if attempts[1]:
        out.append((t["search"], attempts))
    if any(r.test for r in decision.rungs):
        out.append((t["test"], test_table(decision)))
    if decision.comparisons:
        out.append((t["pairs"], pairs_table(decision)))
    if decision.gaps:
        out.append((t["gaps"], gap_lines(decision, lang)))
        tables = rag_tables(decision, lang)
        if tables[1]:
            out.append((t["rag"], tables))
    if decision.curve is not None:
        out.append((t["curve"], curve_table(decision, lang)))
    if decision.readiness is not None:
        out.append((t["ready"], readiness_table(decision)))
        out.append((t["estimates"], estimates_table(decision)))
    if decision.forgetting is not None:
        out.append((t["forget"], forgetting_rows(decision)))
    if decision.route is not None:
        out.append((t["route"], route_rows(decision)))
    return out


def finetune_method(decision: Decision) -> str | None:
    """The training method (``--peft``) of the fine-tune rung; None without one. From the
    rung's config, else the readiness command (``--peft``), else ``lora``: a decision stored
    before there was a choice trained LoRA."""
    rung = next((r for r in decision.rungs if r.strategy == "finetune"), None)
    if rung is None:
        return None
    method = rung.config.get("peft")
    if not method and decision.readiness is not None:
        found = re.search(r"--peft (\S+)", decision.readiness.command)
        method = found.group(1) if found else None
    return str(method or "lora")


def _facts(decision: Decision) -> list[tuple[str, str]]:
    limits = ", ".join(f"{k} {v:g}" for k, v in decision.limits.items() if v is not None) or "none"
    method = finetune_method(decision)
    return [
        ("decision", decision.decision_id),
        ("status", decision.status),
        ("recommended", decision.recommended or "none"),
        ("model", decision.model),
        *([("fine-tune method", method)] if method else []),
        (
            "dev / test / general",
            f"{decision.dev_suite} / {decision.test_suite} / {decision.general_suite or '—'}",
        ),
        ("targets", ", ".join(decision.targets)),
        ("limits", limits),
        ("confidence", f"{decision.confidence:.0%}"),
        ("model calls", calls_text(decision)),
        *_judge_facts(decision),
        ("created", decision.created),
    ]


def calls_text(decision: Decision) -> str:
    """The answering model's calls, and the judge's apart when there was one."""
    if decision.judge_calls:
        return f"{decision.model_calls} answering + {decision.judge_calls} judge"
    return str(decision.model_calls)


def _judge_facts(decision: Decision) -> list[tuple[str, str]]:
    if not decision.judge_agreement:
        return []
    agreement = "; ".join(f"{metric} {text}" for metric, text in decision.judge_agreement.items())
    return [("judge", f"{decision.judge} (agreement with people: {agreement})")]


def render_markdown(decision: Decision) -> str:
    from evaluation.report.markdown import _cell, _table

    out = [f"# Ladder decision: {_cell(decision.name)}", ""]
    out += _table(["", ""], [[f"**{k}**", _cell(v)] for k, v in _facts(decision)])
    for title, body in _sections(decision):
        out += ["", f"## {title}", ""]
        if isinstance(body, tuple):
            header, rows = body
            out += _table(header, [[_cell(v) for v in row] for row in rows])
        else:
            out += [f"- {_cell(line)}" for line in body]
    return "\n".join(out).rstrip() + "\n"


def _charts(decision: Decision) -> str:
    from evaluation.report.svg import Bar, Point, bar_chart, color, scatter_chart

    evaluated = [r for r in decision.rungs if r.state == EVALUATED and r.dev]
    parts = []
    for target in decision.targets:
        metric, _, rest = target.partition(" ")
        threshold = float(rest.split(" ")[-1])
        bars = [
            Bar(r.label, e.mean, e.low, e.high, color(i))
            for i, r in enumerate(evaluated)
            if r.dev and (e := r.dev.metrics.get(metric))
        ]
        parts.append(bar_chart(f"{metric} by rung (CI, target)", bars, threshold))
        points = [
            Point(r.label, r.dev.cost_per_1k, e.mean, color(i))
            for i, r in enumerate(evaluated)
            if r.dev
            and r.dev.cost_per_1k is not None
            and (e := r.dev.metrics.get(metric))
            and e.mean is not None
        ]
        if points:
            parts.append(
                scatter_chart(f"cost against {metric}", points, "cost / 1k questions", metric, threshold)
            )
    return '<div class="charts">' + "".join(parts) + "</div>\n"


def render_html(decision: Decision) -> str:
    from evaluation.report.html_page import CSS, _e, _table

    badge = "ok" if decision.status in (MET, TIE) else "bad"
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _facts(decision))
    parts = [
        f'<!DOCTYPE html>\n<html lang="{_e(decision.language)}">\n<head>\n<meta charset="utf-8">\n',
        f"<title>Ladder decision: {_e(decision.name)}</title>\n<style>{CSS}</style>\n",
        "</head>\n<body>\n<main>\n",
        f"<header><h1>Ladder decision: {_e(decision.name)}</h1>",
        f'<span class="badge {badge}">{_e(decision.status)}</span></header>\n',
        f'<dl class="facts">{facts}</dl>\n',
    ]
    rungs_title = TITLES.get(decision.language, TITLES["en"])["rungs"]
    for title, body in _sections(decision):
        parts.append(f"<section><h2>{_e(title)}</h2>\n")
        if isinstance(body, tuple):
            header, rows = body
            parts.append(
                _table([_e(h) for h in header], [[_e(v).replace("**", "") for v in row] for row in rows])
            )
        else:
            parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in body) + "</ul>\n")
        if title == rungs_title:  # the charts follow the rung table
            parts.append(_charts(decision))
        parts.append("</section>\n")
    parts.append(
        f"<footer>Ladder decision · {_e(decision.decision_id)}</footer>\n</main>\n</body>\n</html>\n"
    )
    return "".join(parts)


def render_json(decision: Decision) -> str:
    """The whole decision plus its reasons in words; ``Decision.from_dict`` reads it back."""
    data = decision.to_dict()
    data["explanation"] = explain(decision)
    data["warnings_text"] = warning_lines(decision)
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


RENDERERS: dict[str, Callable[[Decision], str]] = {
    ".md": render_markdown,
    ".html": render_html,
    ".htm": render_html,
    ".json": render_json,
}


def write_decision(decision: Decision, path: Path) -> Path:
    renderer = RENDERERS.get(path.suffix.lower())
    if renderer is None:
        raise ConfigError(
            f"unknown report suffix {path.suffix or '(none)'!r}", hint="use .md, .html or .json"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(renderer(decision), encoding="utf-8")
    return path


def write_all(decision: Decision, out: Path) -> list[Path]:
    """``decision.md``, ``decision.html`` and ``decision.json`` into ``out``."""
    return [write_decision(decision, out / f"decision{suffix}") for suffix in (".md", ".html", ".json")]


def rung_summary(rung: RungResult) -> str:
    """One line per rung for the terminal."""
    return f"{rung.label}: {rung.state}" + (f" ({rung.note})" if rung.note else "")
