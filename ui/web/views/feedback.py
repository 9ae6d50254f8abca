"""Feedback: the review queue of end users' ratings. Promote one to the evaluation suite (test
side) or to training data (SFT, preference pairs), or dismiss it. A question promoted to one
side is refused on the other (the feedback API enforces it)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.web.common import error_text, guard, settings
from ui.web.components import empty_state
from ui.web.i18n import t
from ui.web.model_text import label_text

cfg = settings()
st.title(t("fb.title"))
st.caption(t("fb.caption"))

with guard():
    from assistant.feedback import dismiss, feedback_counts, list_feedback, promote
    from evaluation.suites.source import SuiteFiles

    counts = feedback_counts(cfg)
    c1, c2, c3 = st.columns(3)
    c1.metric(t("fb.count.new"), str(counts.get("new", 0)))
    c2.metric(t("fb.count.promoted"), str(counts.get("promoted", 0)))
    c3.metric(t("fb.count.dismissed"), str(counts.get("dismissed", 0)))
    c1, c2 = st.columns(2)
    status = c1.selectbox(
        t("fb.status"), ["new", "promoted", "dismissed", "all"], format_func=lambda s: t(f"fb.status.{s}")
    )
    rating = c2.selectbox(t("fb.rating"), ["all", "down", "up"], format_func=lambda s: t(f"fb.rating.{s}"))
    items = list_feedback(
        cfg, status=None if status == "all" else status, rating=None if rating == "all" else rating, limit=100
    )
    if not items:
        empty_state(t("fb.empty") if status == "new" else t("fb.none"))
    for item in items:
        thumb = ":material/thumb_up:" if item.rating == "up" else ":material/thumb_down:"
        with st.expander(f"{thumb} #{item.id} · {label_text(item.question[:90])}", expanded=len(items) == 1):
            when = item.created[:16].replace("T", " ")
            strategy = item.strategy or "—"
            if strategy.endswith((".yaml", ".yml")):  # a strategy file: its name, not its whole path
                strategy = Path(strategy).name
            meta = {"strategy": strategy, "model": item.model or "—", "status": item.status}
            st.caption(t("fb.meta", created=when, source=item.source, **meta))
            st.caption(t("eval.question"))
            st.text(item.question)
            st.caption(t("eval.answer"))
            st.text(item.answer)
            if item.correction:
                st.caption(t("fb.correction"))
                st.text(item.correction)
            if item.comment:
                st.caption(t("fb.comment"))
                st.text(item.comment)
            for citation in item.citations[:5]:
                name = label_text(Path(str(citation.get("source", ""))).name)
                st.caption(f"[{citation.get('number', '')}] {name}")
                st.text(str(citation.get("text", ""))[:600])
            for promotion in item.promotions:
                st.caption(t("fb.promoted_to", target=promotion.target, path=promotion.path))
            if item.status != "new":
                continue
            reference = st.text_area(
                t("fb.reference"),
                value=item.correction or (item.answer if item.rating == "up" else ""),
                key=f"fb_ref_{item.id}",
                help=t("fb.reference_help"),
            )
            b1, b2, b3, b4 = st.columns(4)
            target = None
            if b1.button(t("fb.to_suite"), key=f"fb_suite_{item.id}"):
                target = "suite"
            if b2.button(t("fb.to_sft"), key=f"fb_sft_{item.id}"):
                target = "sft"
            if b3.button(t("fb.to_train"), key=f"fb_train_{item.id}"):
                target = "train"
            if b4.button(t("fb.dismiss"), key=f"fb_dismiss_{item.id}"):
                try:
                    dismiss(cfg, item.id)
                    st.rerun()
                except Exception as exc:
                    st.error(error_text(exc))
            if target is not None:
                try:
                    done = promote(
                        cfg, item.id, target, reference=reference.strip() or None, suites=SuiteFiles()
                    )
                    st.session_state["fb_flash"] = t(
                        "fb.promoted", id=item.id, where=", ".join(f"{p.target} → {p.path}" for p in done)
                    )
                    st.rerun()
                except Exception as exc:  # leakage, no reference, ...: the API's words, in the page
                    st.error(error_text(exc))
    flash = st.session_state.pop("fb_flash", None)
    if flash:
        st.success(flash)
