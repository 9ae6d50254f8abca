"""The Monitor page's way back to the ladder: ``ladder monitor retest`` as a background job (a
``cli`` job, so a reload or another tab reconnects to it), then the old and new verdicts side
by side. Split from ``ui/web/views/monitor.py`` to keep the page's file small."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.web import jobs
from ui.web.common import fmt_num
from ui.web.components import job_panel
from ui.web.i18n import lazy, t
from ui.web.model_text import plain_markdown

if TYPE_CHECKING:
    from assistant.settings import Settings


def _retest_job(cfg: Settings) -> jobs.Job | None:
    """The page's re-test job: the one started in this session, else the newest one."""
    wanted = st.session_state.get("mon_job")
    if wanted:
        return jobs.get(cfg, wanted)
    found = jobs.list_jobs(cfg, "retest", limit=1)
    return found[0] if found else None


def _retest_result(job: jobs.Job) -> dict[str, Any] | None:
    """The re-test's result (``RetestResult.to_dict``), once the job has finished."""
    return job.result if job.result.get("old") and job.result.get("new") else None


def _rung_cell(rung: dict[str, Any] | None) -> str:
    if rung is None:
        return "—"
    if not rung.get("dev"):
        return str(rung.get("state", ""))
    means = ", ".join(f"{metric} {fmt_num(value)}" for metric, value in rung["dev"].items())
    return (t("mon.r.meets") + " · " if rung.get("meets") else "") + means


def _verdicts(result: dict[str, Any]) -> None:
    old, new = result["old"], result["new"]
    st.markdown(
        t(
            "mon.r.split", dev=result["dev_items"], test=result["test_items"],
            promoted=result["feedback_items"], dropped=len(result["dropped"]),
        )
    )  # fmt: skip
    for leak in result["dropped"]:
        values = {k: plain_markdown(str(leak.get(k, ""))) for k in ("item", "match", "training")}
        st.caption(t("mon.r.dropped", **values))
    rows = [
        {"": t("mon.r.decision"), t("mon.r.old"): old["decision_id"], t("mon.r.new"): new["decision_id"]},
        {"": t("mon.r.status"), t("mon.r.old"): old["status"], t("mon.r.new"): new["status"]},
        {
            "": t("mon.r.recommended"),
            t("mon.r.old"): old["recommended"] or "—",
            t("mon.r.new"): new["recommended"] or "—",
        },
        {"": t("mon.r.dev_suite"), t("mon.r.old"): old["dev_suite"], t("mon.r.new"): new["dev_suite"]},
    ]
    labels = list(dict.fromkeys([r["label"] for r in old["rungs"]] + [r["label"] for r in new["rungs"]]))
    for label in labels:
        cells = [next((r for r in v["rungs"] if r["label"] == label), None) for v in (old, new)]
        rows.append({"": label, t("mon.r.old"): _rung_cell(cells[0]), t("mon.r.new"): _rung_cell(cells[1])})
    st.dataframe(rows, hide_index=True, width="stretch")  # a table escapes what it shows
    changed = (old["status"], old["recommended"]) != (new["status"], new["recommended"])
    (st.warning if changed else st.success)(t("mon.r.changed" if changed else "mon.r.holds"))
    st.caption(t("mon.r.config", path=plain_markdown(str(result["config"]))))


def back_to_the_ladder(cfg: Settings, decision: str | None, firing: bool) -> None:
    """The section: the button (enabled with a decision chosen), the job's progress, the verdicts."""
    st.subheader(t("mon.retest"))
    st.caption(t("mon.retest_help"))
    if firing:
        st.warning(t("mon.retest_alert"))
    if not decision:
        st.caption(t("mon.retest_needs"))
    running = bool(jobs.active(cfg, "retest"))
    if st.button(
        t("mon.retest_run"), type="primary" if firing else "secondary", disabled=not decision or running
    ):
        assert decision is not None
        label = lazy("mon.retest_job", decision=decision)
        launched = jobs.launch(cfg, "retest", {"decision": decision}, label)
        st.session_state["mon_job"] = launched.job_id
    job = _retest_job(cfg)
    if job is None:
        return
    result = _retest_result(job) if job.finished else None
    if result is None:
        job_panel(cfg, job.job_id, "mon")
    else:
        _verdicts(result)
