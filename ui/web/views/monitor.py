"""Monitor: how the deployed choice does in use. Daily series of the answer log and ratings
(charts and the JSON/CSV export), the alert rules checked as ``ladder monitor check`` checks them,
drift against a decision's dev suite (or a suite file) and a knowledge base, and the way back to
the ladder: the decision re-run on promoted feedback in the background (``ladder monitor
retest``), its old and new verdicts side by side.

Layout only: every number comes from ``evaluation.monitor``, as for the CLI. Text that users or
rule files wrote (questions, rule names) is shown escaped (``plain_markdown``, ``st.text``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.web.common import guard, settings
from ui.web.components import empty_state
from ui.web.demo_kb import knowledge_bases
from ui.web.i18n import t
from ui.web.model_text import plain_markdown, safe_markdown
from ui.web.monitor_retest import back_to_the_ladder

if TYPE_CHECKING:
    from evaluation.monitor import AlertResult, DriftReference, DriftReport, Stats

WINDOWS = [7, 30, 90]
PRIORITY = {"firing": 0, "not enough data": 1, "quiet": 2, "skipped": 3}
SAMPLE_KEY = {
    "ratings": "mon.s.ratings",
    "questions": "mon.s.questions",
    "distinct questions": "mon.s.distinct",
    "answers with a knowledge base": "mon.s.kb_answers",
    "answers that could cite": "mon.s.citable",
    "answers that retrieved": "mon.s.scored",
}
STATE_KEY = {
    "quiet": "mon.state.quiet",
    "not enough data": "mon.state.not_enough",
    "skipped": "mon.state.skipped",
}

cfg = settings()
st.title(t("mon.title"))
st.caption(t("mon.caption"))


def _fmt(value: Any, kind: str = "") -> str:
    from evaluation.monitor.series import format_value

    return format_value(value, kind)


def _logged() -> int:
    from assistant.monitoring import AnswerLogStore

    with AnswerLogStore(cfg.db_path) as store:
        return store.count()


def _as_of(day: date) -> datetime | None:
    """The end of ``day`` (UTC), as ``ladder monitor --at YYYY-MM-DD``; None (now) for today."""
    if day >= datetime.now(UTC).date():
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def _decisions() -> list[dict[str, Any]]:
    from evaluation.decide.store import DecisionStore

    with DecisionStore(cfg.db_path) as store:
        return list(store.list_decisions(limit=50))


# ---- the series ---------------------------------------------------------------------------------
def _summary(days: int, as_of: datetime | None) -> None:
    from evaluation.monitor import window_stats

    stats = window_stats(cfg, days, as_of)
    st.caption(t("mon.summary", days=days))
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(t("mon.m.questions"), str(stats.questions))
    c2.metric(t("mon.m.thumbs_down", n=stats.ratings), _fmt(stats.thumbs_down_rate, "rate"))
    c3.metric(t("mon.m.not_in_kb"), _fmt(stats.not_in_kb_rate, "rate"))
    c4.metric(t("mon.m.cited"), _fmt(stats.citation_rate, "rate"))
    c5.metric(t("mon.m.p95"), _fmt(stats.latency_p95_ms, "ms"))


def _thumbs_chart(frame: Any) -> Any:
    """Ratings per day as bars (right axis) under the thumbs-down rate as a line (left axis)."""
    import altair as alt

    day, rate, ratings = t("mon.c.day"), t("mon.c.rate"), t("mon.c.ratings")
    data = frame.reset_index().rename(columns={"day": day, "thumbs_down_rate": rate, "ratings": ratings})
    base = alt.Chart(data).encode(x=alt.X(f"{day}:O", title=None))
    bars = base.mark_bar(color="#BBBBBB", opacity=0.6).encode(
        y=alt.Y(f"{ratings}:Q", axis=alt.Axis(orient="right"), title=ratings)
    )
    line = base.mark_line(point=True, color="#D55E00").encode(
        y=alt.Y(f"{rate}:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=rate),
        tooltip=[day, rate, ratings],
    )
    return alt.layer(bars, line).resolve_scale(y="independent").properties(height=240)


def _charts(series: list[Stats]) -> None:
    import pandas as pd

    frame = pd.DataFrame([s.to_dict() for s in series]).set_index("day")
    st.subheader(t("mon.charts"))
    charts: list[tuple[str, Any]] = [
        ("mon.c.questions", lambda where: where.bar_chart(frame[["questions"]], height=240)),
        ("mon.c.thumbs_down", lambda where: where.altair_chart(_thumbs_chart(frame), width="stretch")),
        ("mon.c.not_in_kb", lambda where: where.line_chart(frame[["not_in_kb_rate"]], height=240)),
        ("mon.c.citation", lambda where: where.line_chart(frame[["citation_rate"]], height=240)),
        (
            "mon.c.latency",
            lambda where: where.line_chart(
                frame[["latency_p50_ms", "latency_p95_ms"]].rename(
                    columns={"latency_p50_ms": "p50", "latency_p95_ms": "p95"}
                ),
                height=240,
            ),
        ),
        (
            "mon.c.score",
            lambda where: where.line_chart(
                frame[["best_score_median", "best_score_p10"]].rename(
                    columns={"best_score_median": "median", "best_score_p10": "p10"}
                ),
                height=240,
            ),
        ),
    ]
    for row in range(0, len(charts), 2):
        columns = st.columns(2)
        for where, (title, draw) in zip(columns, charts[row : row + 2], strict=True):
            where.caption(t(title))
            draw(where)


def _downloads(series: list[Stats], days: int) -> None:
    from evaluation.monitor import series_csv, series_json

    end = series[-1].day if series else "none"
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button(
        t("mon.download_json"),
        series_json(series),
        file_name=f"monitor-{end}-{days}d.json",
        mime="application/json",
    )
    c2.download_button(
        t("mon.download_csv"), series_csv(series), file_name=f"monitor-{end}-{days}d.csv", mime="text/csv"
    )


# ---- the reference, alerts, drift ---------------------------------------------------------------
def _options(decisions: list[dict[str, Any]]) -> tuple[str, str | None, str | None, str | None]:
    """(rule file path, decision id, suite path, knowledge base): the page's choices."""
    with st.expander(t("mon.options"), expanded=False):
        rules = st.text_input(t("mon.rules"), key="mon_rules", help=t("mon.rules_help")).strip()
        source = st.radio(
            t("mon.ref"), ["decision", "suite", "none"], format_func=lambda s: t(f"mon.ref.{s}"),
            horizontal=True, key="mon_ref",
        )  # fmt: skip
        decision = suite = None
        if source == "decision":
            if not decisions:
                st.caption(t("mon.no_decisions"))
            labels = {
                d["decision_id"]: f"{d['decision_id']} · {d['name']} · {d['status']}" for d in decisions
            }
            decision = st.selectbox(
                t("mon.decision"), list(labels), format_func=labels.__getitem__, key="mon_decision"
            )
        elif source == "suite":
            suite = (
                st.text_input(t("mon.suite"), key="mon_suite", placeholder="suites/dev.yaml").strip() or None
            )
        kbs = knowledge_bases(cfg)
        kb = st.selectbox(
            t("mon.kb"), ["", *kbs], format_func=lambda k: k or t("mon.kb_default"), key="mon_kb"
        )
    return rules, decision, suite, kb or None


def _reference(decision: str | None, suite: str | None) -> DriftReference | None:
    from evaluation.monitor import reference_from_decision, reference_from_suite

    if decision:
        return reference_from_decision(cfg, decision)
    if suite:
        return reference_from_suite(suite)
    return None


def _check(
    rules: str, decision: str | None, suite: str | None, kb: str | None, as_of: datetime | None
) -> tuple[list[AlertResult], bool]:
    """The rules checked as ``ladder monitor check`` does (page choices win over the rule file's),
    and whether drift rules were skipped for want of a knowledge base (the CLI refuses instead)."""
    from evaluation.monitor import check, load_rules

    rule_file = load_rules(Path(rules) if rules else None)
    reference = _reference(decision, suite)
    if reference is None and (rule_file.drift_decision or rule_file.drift_suite):
        drift_suite = str(rule_file.drift_suite) if rule_file.drift_suite else None
        reference = _reference(rule_file.drift_decision, drift_suite)
    kb = kb or rule_file.drift_kb
    no_kb = reference is not None and not (kb or reference.kb)
    if no_kb:  # drift rules are then "skipped", with the engine's reason
        reference = None
    return check(cfg, rule_file.rules, as_of=as_of, drift_reference=reference, kb=kb), no_kb


def _alert_values(r: AlertResult) -> dict[str, object]:
    return {
        "rule": plain_markdown(r.rule),
        "metric": plain_markdown(r.metric),
        "window": f"{r.window_days:g}",
        "value": _fmt(r.value, "ms" if r.metric.endswith("_ms") else ""),
        "op": plain_markdown(r.op),
        "threshold": f"{r.threshold:g}",
        "samples": r.samples,
        "sample_of": t(SAMPLE_KEY[r.sample_of]) if r.sample_of in SAMPLE_KEY else plain_markdown(r.sample_of),
        "min": r.min_samples,
    }


def _alerts(results: list[AlertResult]) -> bool:
    """Firing rules first, each in a red box; the others below, grey. True when one fires."""
    from evaluation.monitor import NOT_ENOUGH, SKIPPED

    firing = [r for r in results if r.firing]
    if not firing:
        st.success(t("mon.alerts_none"))
    for r in firing:
        st.error(t("mon.alert_firing", **_alert_values(r)), icon=":material/notifications_active:")
    for r in sorted((r for r in results if not r.firing), key=lambda r: PRIORITY.get(r.state, 9)):
        line = t("mon.alert_other", state=t(STATE_KEY.get(r.state, "mon.state.skipped")), **_alert_values(r))
        # The engine's notes for these two states repeat the line or name CLI flags: said here instead.
        if r.state == SKIPPED:
            note = t("mon.skip_no_ref")
        else:
            note = "" if r.state == NOT_ENOUGH else plain_markdown(r.note)
        st.caption(line + (f" — {note}" if note else ""))
    return bool(firing)


def _drift_view(report: DriftReport) -> None:
    head = {
        "start": report.start[:16].replace("T", " "),
        "end": report.end[:16].replace("T", " "),
        "recent": report.recent,
        "reference": plain_markdown(report.reference),
        "kb": plain_markdown(report.kb),
    }
    st.markdown(t("mon.drift_head", **head))
    rows = [
        {
            t("mon.d.what"): t(f"mon.d.{s.name}") if s.name in ("kb", "dev") else s.name,
            t("mon.d.ref_median"): s.reference_median,
            t("mon.d.recent_median"): s.recent_median,
            "n (ref / recent)": f"{s.reference_n} / {s.recent_n}",
            "KS D": s.ks_d,
            "KS p": s.ks_p,
            t("mon.d.far_below"): s.far_below,
        }
        for s in report.similarities
    ]
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    if report.far_share is not None:
        c1, c2 = st.columns(2)
        c1.metric(t("mon.d.far"), f"{report.far}/{report.recent} = {report.far_share:.1%}")
        c2.metric(t("mon.d.far_p"), _fmt(report.far_p))
    if report.far_examples:
        st.caption(t("mon.d.examples"))
        st.markdown("\n".join("- " + plain_markdown(example[:200]) for example in report.far_examples))
    for note in report.notes:
        st.warning(safe_markdown(note))


def _alerts_section(
    rules: str, decision: str | None, suite: str | None, kb: str | None, as_of: datetime | None
) -> bool:
    st.subheader(t("mon.alerts"))
    with guard(t("mon.alerts")):
        # A drift rule embeds the recent questions (seconds): the results are kept for the same
        # choices and the same log until "Check again".
        rules_file = Path(rules) if rules else None
        stamp = rules_file.stat().st_mtime if rules_file and rules_file.is_file() else None
        key = (rules, stamp, decision, suite, kb, str(as_of), _logged())
        kept = st.session_state.get("mon_alerts")
        if st.button(t("mon.check_again"), key="mon_check_again") or not kept or kept[0] != key:
            with st.spinner(t("mon.checking")):
                kept = (key, *_check(rules, decision, suite, kb, as_of))
            st.session_state["mon_alerts"] = kept
        if kept[2]:
            st.caption(t("mon.drift_no_kb"))
        return _alerts(kept[1])
    return False


def _drift_section(
    decision: str | None, suite: str | None, kb: str | None, days: int, as_of: datetime | None
) -> None:
    from evaluation.monitor import drift

    st.subheader(t("mon.drift"))
    st.caption(t("mon.drift_help"))
    reference = None
    with guard(t("mon.drift")):
        reference = _reference(decision, suite)
    if reference is None:
        st.caption(t("mon.drift_needs"))
    elif not (kb or reference.kb):
        st.caption(t("mon.drift_no_kb"))
        reference = None
    key = (decision, suite, kb, days, str(as_of))
    if st.button(t("mon.drift_run"), disabled=reference is None) and reference is not None:
        with guard(t("mon.drift")), st.spinner(t("mon.drift_running")):
            st.session_state["mon_drift"] = (key, drift(cfg, reference, kb=kb, days=days, as_of=as_of))
    shown = st.session_state.get("mon_drift")
    if shown and shown[0] == key:
        _drift_view(shown[1])


# ---- the page -----------------------------------------------------------------------------------
with guard():
    if not _logged():
        empty_state(t("mon.empty"))
        st.stop()
    c1, c2, _ = st.columns([1, 1, 2])
    days = c1.selectbox(t("mon.window"), WINDOWS, key="mon_days")
    day = c2.date_input(t("mon.as_of"), value=datetime.now(UTC).date(), key="mon_as_of")
    as_of = _as_of(day if isinstance(day, date) else datetime.now(UTC).date())
    decisions = _decisions()
    rules, decision, suite, kb = _options(decisions)

    from evaluation.monitor import daily_series

    series = daily_series(cfg, days, as_of)
    _summary(days, as_of)

    firing = _alerts_section(rules, decision, suite, kb, as_of)
    back_to_the_ladder(cfg, decision, firing)
    _charts(series)
    _downloads(series, days)
    _drift_section(decision, suite, kb, days, as_of)
