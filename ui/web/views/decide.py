"""Decide: pick or write a decision config, climb the ladder in the background, read the
verdict with its charts (score ± CI by rung against the targets, cost against score), list
past decisions and export the HTML report.

A decision whose knowledge base does not exist is not started (it would fail in the
background with a command-line hint): the page says so, and for the shipped demo decisions
offers to build the demo knowledge base here (``ui.web.demo_kb``). On a new install that is the
first thing the page says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.web import jobs
from ui.web.common import fmt_ci, fmt_num, guard, settings, ui_defaults, ui_dir
from ui.web.components import ci_chart, empty_state, job_panel, scatter_chart
from ui.web.demo_kb import DEMO_KB, building, demo_documents, demo_kb_outcome, demo_kb_panel, knowledge_bases
from ui.web.files import find_decision_configs, short
from ui.web.i18n import current_language, lazy, t
from ui.web.model_text import safe_markdown, show_markdown

if TYPE_CHECKING:
    from evaluation.decide.result import Decision

cfg = settings()
st.title(t("dec.title"))
st.caption(t("dec.caption"))
STATUS_STYLE = {"met": "success", "tie": "success", "not_met": "error", "not_confirmed": "warning"}
TEMPLATE = """name: my-decision
model: {model}
suites:
  dev: /path/to/suites/dev.yaml
  test: /path/to/suites/test.yaml
targets:
{targets}
rungs: [prompt, fewshot, reflection, rag]
kb: handbook
no_judge: true
"""


def _targets() -> str:
    text = str(ui_defaults(cfg).get("targets") or 'token_f1: ">= 0.6"')
    return "\n".join("  " + line for line in text.strip().splitlines())


def _needed_kb(config_path: str | None) -> str | None:
    """The knowledge base a config names, when it can be read (errors are reported on Start)."""
    if not config_path or not Path(config_path).is_file():
        return None
    try:
        from evaluation.decide.engine import load_decision_config

        return load_decision_config(Path(config_path)).kb
    except Exception:
        return None


def _has_decisions() -> bool:
    from evaluation.decide.store import DecisionStore

    with DecisionStore(cfg.db_path) as store:
        return bool(store.list_decisions(limit=1))


def _missing_kb(needed: str | None) -> bool:
    """Say what to do when the config's knowledge base is missing; True when it is."""
    kbs = knowledge_bases(cfg)
    if needed is None or (needed in kbs and not (needed == DEMO_KB and building(cfg))):
        return False
    if needed == DEMO_KB and demo_documents():
        with st.container(border=True):
            first_run = not kbs and not _has_decisions()
            st.markdown(
                t("dec.first_run" if first_run else "dec.demo_kb_missing", kb=DEMO_KB, n=demo_documents())
            )
            demo_kb_panel(cfg, "dec_demo_kb")
    else:
        st.warning(t("dec.kb_missing", kb=needed))
        st.page_link("views/knowledge.py", label=t("dec.open_kb_page"), icon=":material/library_books:")
    return True


demo_kb_outcome(cfg)
run_tab, past_tab = st.tabs([t("dec.tab.run"), t("dec.tab.past")])

with run_tab:
    configs = [str(p) for p in find_decision_configs(cfg)]
    source = st.radio(
        t("dec.source"),
        ["pick", "write"],
        format_func=lambda s: t(f"dec.source.{s}"),
        horizontal=True,
        key="dec_source",
    )
    config_path: str | None = None
    if source == "pick":
        if not configs:
            empty_state(t("dec.no_configs"))
        picked = st.selectbox(t("dec.config"), configs, format_func=short, index=0 if configs else None)
        typed = st.text_input(t("dec.config_path"), placeholder="decide.yaml")
        config_path = typed.strip() or picked
        if config_path and Path(config_path).is_file():
            with st.expander(t("dec.show_config")):
                st.code(Path(config_path).read_text(encoding="utf-8", errors="replace"), language="yaml")
    else:
        st.caption(t("dec.write_help"))
        name = st.text_input(t("dec.file_name"), value="my-decision")
        text = st.text_area(
            t("dec.yaml"), value=TEMPLATE.format(model=cfg.model, targets=_targets()), height=260
        )
        if st.button(t("dec.save")):
            clean = re.sub(r"[^\w\-]+", "_", name).strip("_") or "decision"
            folder = ui_dir(cfg) / "decisions"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{clean}.yaml"
            target.write_text(text, encoding="utf-8")
            st.session_state["dec_written"] = str(target)
            st.success(t("dec.saved", path=str(target)))
        config_path = st.session_state.get("dec_written")
    kb_missing = _missing_kb(_needed_kb(config_path))
    c1, c2 = st.columns(2)
    finetune = c1.selectbox(
        t("dec.finetune"), ["config", "allow", "forbid"], format_func=lambda s: t(f"dec.finetune.{s}")
    )
    c2.caption(t("dec.language_note"))
    if st.button(
        t("dec.start"),
        type="primary",
        disabled=not config_path or kb_missing or bool(jobs.active(cfg, "decide")),
    ):
        with guard(t("dec.start")):
            from evaluation.decide.engine import load_decision_config

            assert config_path is not None
            load_decision_config(Path(config_path))  # a bad config is reported here, before any job
            job = jobs.launch(
                cfg,
                "decide",
                {
                    "config": str(Path(config_path).resolve()),
                    "allow_finetune": {"config": None, "allow": True, "forbid": False}[finetune],
                    "language": current_language(),
                },
                lazy("dec.job_title", config=short(config_path)),
            )
            st.session_state["dec_job"] = job.job_id
    recent = jobs.list_jobs(cfg, "decide", limit=1)
    dec_job = job_panel(cfg, st.session_state.get("dec_job") or (recent[0].job_id if recent else None), "dec")
    if dec_job is not None and dec_job.status == jobs.DONE:
        st.success(t("dec.done", status=dec_job.result.get("status", "")))
        st.session_state.setdefault("dec_show", dec_job.result.get("decision_id"))


def _rung_rows(decision: Decision) -> list[dict[str, Any]]:
    rows = []
    for rung in decision.rungs:
        row: dict[str, Any] = {t("dec.col.rung"): rung.label, t("dec.col.state"): rung.state}
        scores = rung.dev
        for target in decision.targets:
            metric = target.split(" ")[0]
            estimate = scores.metrics.get(metric) if scores else None
            row[metric] = (
                "-" if estimate is None else f"{fmt_num(estimate.mean)} {fmt_ci(estimate.low, estimate.high)}"
            )
        row[t("dec.col.meets")] = "✓" if rung.meets else ("✗" if rung.state == "evaluated" else "")
        row[t("dec.col.cost")] = fmt_num(scores.cost_per_1k if scores else None, 4)
        row[t("dec.col.p95")] = fmt_num(scores.p95_latency_s if scores else None, 2)
        row[t("dec.col.note")] = rung.note
        rows.append(row)
    return rows


def _show(decision: Decision) -> None:
    import pandas as pd

    from evaluation.decide.report import render_html
    from evaluation.decide.text import explain

    lang = current_language()
    lines = explain(decision, lang)
    getattr(st, STATUS_STYLE.get(decision.status, "info"))(safe_markdown(lines[0]))
    for line in lines[1:]:  # the reasons quote config names and the model's diagnoses
        show_markdown("- " + line.replace("\n", " "))
    st.dataframe(_rung_rows(decision), hide_index=True, width="stretch")
    evaluated = [r for r in decision.rungs if r.state == "evaluated" and r.dev]
    for target in decision.targets:
        metric, _, rest = target.partition(" ")
        try:
            threshold: float | None = float(rest.split(" ")[-1])
        except ValueError:
            threshold = None
        points = [
            {"rung": r.label, "mean": e.mean, "low": e.low if e.low is not None else e.mean,
             "high": e.high if e.high is not None else e.mean, "cost": r.dev.cost_per_1k}
            for r in evaluated
            if r.dev and (e := r.dev.metrics.get(metric)) and e.mean is not None
        ]  # fmt: skip
        if not points:
            continue
        c1, c2 = st.columns(2)
        c1.caption(t("dec.chart_score", metric=metric, target=target))
        c1.altair_chart(ci_chart(pd.DataFrame(points), "rung", metric, threshold), width="stretch")
        costed = [p for p in points if p["cost"] is not None]
        if costed:
            c2.caption(t("dec.chart_cost", metric=metric))
            data = pd.DataFrame(costed).rename(columns={"cost": t("eval.cost_axis"), "mean": metric})
            c2.altair_chart(scatter_chart(data, t("eval.cost_axis"), metric, "rung"), width="stretch")
    if decision.readiness is not None and decision.readiness.command:
        st.caption(t("dec.finetune_command"))
        st.code(decision.readiness.command, language="bash")
    st.download_button(
        t("dec.export"),
        render_html(decision),
        file_name=f"decision-{decision.decision_id}.html",
        mime="text/html",
    )


with past_tab, guard():
    from evaluation.decide.store import DecisionStore

    with DecisionStore(cfg.db_path) as store:
        rows = store.list_decisions(limit=50)
    if not rows:
        empty_state(t("dec.no_decisions"))
    else:
        st.dataframe(
            [
                {
                    "id": r["decision_id"],
                    t("dec.col.name"): r["name"],
                    t("dec.col.created"): r["created"].replace("T", " ")[:16],
                    t("dec.col.status"): r["status"],
                    t("dec.col.recommended"): r["recommended"] or "—",
                }
                for r in rows
            ],
            hide_index=True,
            width="stretch",
        )
        ids = [r["decision_id"] for r in rows]
        wanted = st.session_state.get("dec_show")
        labels = {r["decision_id"]: f"{r['decision_id']} · {r['name']} · {r['status']}" for r in rows}
        chosen = st.selectbox(
            t("dec.pick"),
            ids,
            index=ids.index(wanted) if wanted in ids else 0,
            format_func=labels.__getitem__,
        )
        if chosen:
            with DecisionStore(cfg.db_path) as store:
                decision = store.load_decision(chosen)
            _show(decision)
            confirm = st.checkbox(t("dec.confirm_delete"), key="dec_confirm_delete")
            if st.button(t("dec.delete"), key="dec_delete", disabled=not confirm):
                with DecisionStore(cfg.db_path) as store:
                    store.delete_decision(chosen)
                st.session_state.pop("dec_show", None)
                st.rerun()
