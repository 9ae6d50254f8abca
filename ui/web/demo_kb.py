"""The demo knowledge base from the browser: what a new install needs before its first decision.

The shipped demo decisions (``datasets/demo/decisions``) answer from the knowledge base
``qinghe-demo``, which ``ladder demo`` builds from ``datasets/demo/kb``. A browser user is
not sent to the command line for it: the Decide page offers a button that runs the same code
(``evaluation.decide.demo.ensure_kb``) as a background job (``ui.web.worker``), with its progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.web import jobs
from ui.web.components import job_panel
from ui.web.i18n import lazy, t
from ui.web.model_text import safe_markdown

if TYPE_CHECKING:
    from assistant.settings import Settings

DEMO_KB = "qinghe-demo"  # evaluation.decide.demo.DEMO_KB, without importing the demo for a constant
_JOB = "dec_demo_kb_job"


def demo_documents() -> int:
    """How many documents the demo knowledge base is built from (0 without the demo data)."""
    from evaluation.decide.demo import DEMO_DIR

    folder = DEMO_DIR / "kb"
    return sum(1 for path in folder.iterdir() if path.is_file()) if folder.is_dir() else 0


def knowledge_bases(settings: Settings) -> list[str]:
    from assistant.knowledge import KnowledgeBase

    return KnowledgeBase.list_all(settings)


def building(settings: Settings) -> bool:
    return bool(jobs.active(settings, "demo_kb"))


def demo_kb_panel(settings: Settings, key: str) -> None:
    """The button that builds the demo knowledge base, then the job's progress and outcome."""
    if st.button(t("demo.create"), key=key, type="primary", disabled=building(settings)):
        job = jobs.launch(settings, "demo_kb", {}, lazy("demo.job_title", kb=DEMO_KB))
        st.session_state[_JOB] = job.job_id
    recent = jobs.list_jobs(settings, "demo_kb", limit=1)
    job_panel(settings, st.session_state.get(_JOB) or (recent[0].job_id if recent else None), "demo_kb")


def demo_kb_outcome(settings: Settings) -> None:
    """Once the job this session started has finished: say how it went, once, at the top of
    the page (the button's panel is gone by then when the knowledge base exists)."""
    job_id = st.session_state.get(_JOB)
    job = jobs.get(settings, job_id) if job_id else None
    if job is None or not job.finished:
        return
    st.session_state.pop(_JOB, None)
    if job.status == jobs.DONE:
        chunks = int(job.result.get("chunks", 0))
        st.success(t("demo.ready", kb=DEMO_KB, files=job.result.get("files", 0), chunks=chunks))
    elif job.status != jobs.STOPPED and DEMO_KB in knowledge_bases(settings):  # else the panel says it
        st.error(
            t("demo.failed", kb=DEMO_KB) + "\n\n" + safe_markdown(job.error or t("job.failed_no_reason"))
        )
