"""Shared widgets: background-job panels, score tables with CIs, charts.

Everything a user, a document or the model wrote is shown through elements that escape it
(``st.text``, ``st.dataframe``, ``st.code``) or as Markdown through ``ui.web.model_text`` (no
image, no HTML): nothing in a document or an answer can run in the page or make the browser
fetch a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.web import jobs
from ui.web.common import fmt_ci, fmt_num
from ui.web.i18n import t, translate
from ui.web.model_text import safe_markdown

if TYPE_CHECKING:
    import altair as alt

    from assistant.settings import Settings
    from evaluation.results import RunResult

STATUS_ICON = {
    jobs.QUEUED: ":material/hourglass_empty:",
    jobs.RUNNING: ":material/progress_activity:",
    jobs.DONE: ":material/check_circle:",
    jobs.FAILED: ":material/error:",
    jobs.STOPPED: ":material/stop_circle:",
    jobs.DIED: ":material/error:",
}


def job_status_line(job: jobs.Job) -> str:
    """Markdown: the status icon, then the title and status as plain text."""
    title = translate(job.title)
    return f"{STATUS_ICON.get(job.status, '')} **{_md_escape(title)} · {t('job.status.' + job.status)}**"


def job_panel(settings: Settings, job_id: str | None, key: str, stoppable: bool = True) -> jobs.Job | None:
    """Progress of a background job, refreshed every second while it runs; None if no job."""
    if not job_id:
        return None
    job = jobs.get(settings, job_id)
    if job is None:
        return None
    running_key = f"_job_running_{key}"

    @st.fragment(run_every=1.0 if not job.finished else None)
    def _panel() -> None:
        current = jobs.get(settings, job_id)
        if current is None:
            return
        with st.container(border=True):
            st.markdown(job_status_line(current))
            if not current.finished:
                st.session_state[running_key] = True
                fraction = current.fraction
                stage = current.stage or t("job.starting")
                amount = f" {current.done:.0f}/{current.total:.0f} {current.unit}" if current.total else ""
                st.progress(fraction if fraction is not None else 0.0, text=stage + amount)
                if stoppable and st.button(t("job.stop"), key=f"stop_{key}_{job_id}"):
                    jobs.stop(current)
                    st.rerun(scope="app")
            elif st.session_state.pop(running_key, False):
                st.rerun(scope="app")  # it just finished: redraw the page with its results
            for note in current.notes[-3:]:
                st.caption(safe_markdown(note))
            if current.status in (jobs.FAILED, jobs.DIED):
                st.error(safe_markdown(current.error) if current.error else t("job.failed_no_reason"))
                tail = current.log_tail(15)
                if tail:
                    with st.expander(t("job.log")):
                        st.code(tail, language=None)
            elif current.status == jobs.STOPPED:
                st.warning(t("job.stopped"))

    _panel()
    return jobs.get(settings, job_id)


def _md_escape(text: str) -> str:
    """Text shown through Markdown without any of it being read as Markdown or HTML."""
    out = []
    for char in text:
        if char in "\\`*_{}[]()#+-.!|<>~$":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


md_escape = _md_escape


# ---- evaluation runs -----------------------------------------------------------------------------
def score_rows(run: RunResult) -> list[dict[str, Any]]:
    """One row per strategy: each metric as mean [CI], with its threshold mark; cost and speed."""
    labels = list(dict.fromkeys(label for s in run.strategies for label in s.metrics))
    rows = []
    for strategy in run.strategies:
        row: dict[str, Any] = {t("eval.col.strategy"): strategy.strategy}
        for label in labels:
            metric = strategy.metrics.get(label)
            if metric is None:
                row[label] = "-"
                continue
            cell = f"{fmt_num(metric.mean)} {fmt_ci(metric.low, metric.high)}".strip()
            if metric.n_na:
                cell += f" ({metric.n_na} n/a)"
            if metric.passed is not None:
                cell += " ✓" if metric.passed else " ✗"
            row[label] = cell
        cost = strategy.cost
        row[t("eval.col.cost")] = (
            "-"
            if cost is None or cost.cost_per_1k_questions is None
            else f"{cost.cost_per_1k_questions:.4f} {cost.currency}"
        )
        row[t("eval.col.latency")] = "-" if cost is None else fmt_num(cost.latency_p50_s, 2)
        rows.append(row)
    return rows


def score_chart(run: RunResult, metric: str) -> Any:
    """Mean with its CI per strategy, and the threshold as a rule."""
    import pandas as pd

    points = []
    threshold = None
    for strategy in run.strategies:
        result = strategy.metrics.get(metric)
        if result is None or result.mean is None:
            continue
        threshold = result.threshold if result.threshold is not None else threshold
        points.append(
            {
                "strategy": strategy.strategy,
                "mean": result.mean,
                "low": result.low if result.low is not None else result.mean,
                "high": result.high if result.high is not None else result.mean,
            }
        )
    if not points:
        return None
    return ci_chart(pd.DataFrame(points), "strategy", metric, threshold)


def ci_chart(data: Any, by: str, title: str, threshold: float | None) -> Any:
    import altair as alt

    base = alt.Chart(data).encode(y=alt.Y(f"{by}:N", sort=None, title=None))
    axis = alt.Axis(values=[0, 0.2, 0.4, 0.6, 0.8, 1.0], format=".1f")
    layers: list[Any] = [
        base.mark_bar(opacity=0.8, color="#0072B2", size=22).encode(
            x=alt.X("mean:Q", scale=alt.Scale(domain=[0, 1]), axis=axis, title=title),
            tooltip=[by, "mean", "low", "high"],
        ),
        base.mark_rule(color="#222", strokeWidth=2).encode(x="low:Q", x2="high:Q"),
        base.mark_tick(color="#222", thickness=2, size=14).encode(x="low:Q"),
        base.mark_tick(color="#222", thickness=2, size=14).encode(x="high:Q"),
    ]
    if threshold is not None:  # in the same data: Streamlit draws one dataset per chart reliably
        data = data.assign(target=threshold)
        layers.append(
            alt.Chart(data)
            .mark_tick(color="#D55E00", thickness=3, size=30)
            .encode(x="target:Q", y=alt.Y(f"{by}:N", sort=None, title=None), tooltip=["target"])
        )
    return alt.layer(*layers).properties(height=alt.Step(44))  # one band per row, whatever the count


def scatter_chart(data: Any, x: str, y: str, label: str) -> alt.Chart:
    import altair as alt

    return (
        alt.Chart(data)
        .mark_circle(size=120, color="#009E73")
        .encode(
            x=alt.X(f"{x}:Q", title=x, axis=alt.Axis(format=".4~f")),
            y=alt.Y(f"{y}:Q", title=y, scale=alt.Scale(domain=[0, 1])),
            tooltip=[label, x, y],
        )
        .properties(height=260)
    )


def show_text_block(label: str, text: str | None) -> None:
    """A labelled piece of user or model text, shown verbatim (escaped)."""
    st.caption(label)
    st.text(text if text else "—")


def empty_state(message: str) -> None:
    st.info(message, icon=":material/lightbulb:")


def pick_label(options: Sequence[str], label: str, key: str, index: int = 0) -> str | None:
    if not options:
        return None
    return st.selectbox(label, list(options), index=min(index, len(options) - 1), key=key)
