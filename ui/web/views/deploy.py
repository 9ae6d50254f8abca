"""Deploy: pick a decision, build its model in each serving format in the background
(``ladder deploy`` as a job), read the table (quality on the held-out test split against the
targets, and what each format costs) and the verdict, and how to serve the choice."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.web import jobs
from ui.web.common import guard, settings
from ui.web.components import empty_state, job_panel
from ui.web.i18n import lazy, t
from ui.web.model_text import show_markdown

if TYPE_CHECKING:
    from evaluation.deploy.result import Deployment

cfg = settings()
st.title(t("dep.title"))
st.caption(t("dep.caption"))


def _deployable() -> list[dict[str, Any]]:
    from evaluation.decide.store import DecisionStore

    with DecisionStore(cfg.db_path) as store:
        return [r for r in store.list_decisions(limit=100) if r["recommended"]]


def _formats() -> list[tuple[str, str | None]]:
    """Every format, cheapest first, with its engine's install hint when it is missing."""
    from finetune.deploy.formats import format_names, get_format

    return [(name, get_format(name).engine_missing()) for name in format_names()]


def _show(deployment: Deployment) -> None:
    from evaluation.deploy.report import format_table, render_html, serve_commands, verdict_lines

    lines = verdict_lines(deployment)
    (st.success if deployment.passed else st.error)(lines[0])
    header, rows = format_table(deployment)
    st.dataframe(
        [dict(zip(header, [cell.replace("**", "") for cell in row], strict=True)) for row in rows],
        hide_index=True,
        width="stretch",
    )
    for line in lines[1:]:
        show_markdown("- " + line)
    commands = serve_commands(deployment)
    if commands:
        st.caption(t("dep.serve"))
        st.code("\n".join(commands), language="bash")
    st.download_button(
        t("dep.export"),
        render_html(deployment),
        file_name=f"deployment-{deployment.name}.html",
        mime="text/html",
    )


run_tab, past_tab = st.tabs([t("dep.tab.run"), t("dep.tab.past")])

with run_tab, guard():
    decisions = _deployable()
    if not decisions:
        empty_state(t("dep.no_decisions"))
    labels = {r["decision_id"]: f"{r['name']} · {r['recommended']} · {r['decision_id']}" for r in decisions}
    picked = st.selectbox(t("dep.decision"), list(labels), format_func=labels.__getitem__)
    available = _formats()
    for name, hint in available:
        if hint:
            st.caption(t("dep.engine_missing", format=name, hint=hint))
    chosen = st.multiselect(
        t("dep.formats"),
        [name for name, _ in available],
        default=[name for name, hint in available if not hint],
        help=t("dep.formats_help"),
    )
    c1, c2 = st.columns(2)
    default_name = next((r["name"] for r in decisions if r["decision_id"] == picked), "")
    name = c1.text_input(t("dep.name"), value=default_name).strip()
    stop_at_first = c2.checkbox(t("dep.stop_at_first"), help=t("dep.stop_at_first_help"))
    bad_name = bool(name) and not re.fullmatch(r"[\w][\w.\-]*", name)
    if bad_name:
        st.warning(t("dep.bad_name"))
    if st.button(
        t("dep.start"),
        type="primary",
        disabled=not picked or not chosen or not name or bad_name or bool(_running := [
            j for j in jobs.active(cfg, "cli") if j.params.get("deployment")
        ]),
    ):  # fmt: skip
        argv = ["deploy", str(picked), "--formats", ",".join(chosen), "--name", name]
        job = jobs.launch(
            cfg,
            "cli",
            {"argv": argv + (["--stop-at-first"] if stop_at_first else []), "deployment": name},
            lazy("dep.job_title", name=name),
        )
        st.session_state["dep_job"] = job.job_id
    recent = [j for j in jobs.list_jobs(cfg, "cli") if j.params.get("deployment")]
    dep_job = job_panel(cfg, st.session_state.get("dep_job") or (recent[0].job_id if recent else None), "dep")
    if dep_job is not None and dep_job.finished:
        st.session_state.setdefault("dep_show", dep_job.params.get("deployment"))
        if dep_job.status == jobs.FAILED and "exited with code 1" in (dep_job.error or ""):
            # `ladder deploy` exits 1 when no format meets: a result, written all the same.
            st.info(t("dep.none_met", name=str(dep_job.params.get("deployment"))))

with past_tab, guard():
    from evaluation.deploy.record import list_deployments

    found = list_deployments(cfg)
    if not found:
        empty_state(t("dep.no_deployments"))
    else:
        st.dataframe(
            [
                {
                    t("dep.col.name"): d.name,
                    t("dep.col.created"): d.created.replace("T", " ")[:16],
                    t("dep.col.decision"): d.decision_name,
                    t("dep.col.model"): d.source_model,
                    t("dep.col.chosen"): d.chosen or "—",
                }
                for d in found
            ],
            hide_index=True,
            width="stretch",
        )
        names = [d.name for d in found]
        wanted = st.session_state.get("dep_show")
        shown = st.selectbox(t("dep.pick"), names, index=names.index(wanted) if wanted in names else 0)
        _show(next(d for d in found if d.name == shown))
