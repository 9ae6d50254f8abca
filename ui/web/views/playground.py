"""Playground: one question to several strategies side by side, each with its answer and trace
(retrieved chunks with scores, reflection rounds, agent actions, tokens, latency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from assistant.strategies.base import strategy_names
from ui.web.common import error_text, settings
from ui.web.components import empty_state
from ui.web.i18n import t
from ui.web.model_text import label_text, show_markdown

# Every registered strategy (route and delegate need a <base>+<adapter> model).
STRATEGIES = strategy_names()
cfg = settings()
st.title(t("play.title"))
st.caption(t("play.caption"))


def _kbs() -> list[str]:
    from assistant.knowledge import KnowledgeBase

    return KnowledgeBase.list_all(cfg)


kbs = _kbs()
with st.form("play"):
    question = st.text_area(t("play.question"), key="play_question", height=90)
    c1, c2, c3 = st.columns([3, 2, 2])
    chosen = c1.multiselect(
        t("play.strategies"), STRATEGIES, default=["prompt", "rag"] if kbs else ["prompt"]
    )
    kb = c2.selectbox(t("play.kb"), kbs, index=0 if kbs else None, placeholder=t("play.no_kb"))
    model = c3.text_input(t("play.model"), value=cfg.model)
    c1, c2 = st.columns(2)
    max_tokens = c1.number_input(t("play.max_tokens"), 8, 4096, 256, step=8)
    system = c2.text_input(t("play.system"), value="")
    asked = st.form_submit_button(t("play.ask"), type="primary")

if asked:
    if not question.strip():
        st.warning(t("play.need_question"))
    elif not chosen:
        st.warning(t("play.need_strategy"))
    else:
        from assistant.service import answer_questions
        from assistant.types import Question

        answers: list[dict[str, Any]] = []
        with st.spinner(t("play.answering")):
            for name in chosen:
                overrides: dict[str, Any] = {
                    "model": model.strip() or None,
                    "max_new_tokens": int(max_tokens),
                    "system_prompt": system.strip() or None,
                }
                if name in ("rag", "agent"):
                    overrides["kb"] = kb
                if name == "rag":  # the retrieval options set on the Knowledge base page
                    overrides["k"] = st.session_state.get("kb_top_k")
                    overrides["mode"] = st.session_state.get("kb_mode")
                    overrides["min_score"] = st.session_state.get("kb_min_score")
                try:
                    answer = answer_questions([Question(question.strip())], name, settings=cfg, **overrides)[
                        0
                    ]
                    answers.append({"strategy": name, "answer": answer})
                except Exception as exc:  # each column shows its own error, the others still answer
                    answers.append({"strategy": name, "error": error_text(exc)})
        st.session_state["play_results"] = answers

results = st.session_state.get("play_results")
if not results:
    empty_state(t("play.empty"))
    st.stop()

columns = st.columns(len(results))
for column, result in zip(columns, results, strict=True):
    with column:
        st.subheader(result["strategy"])
        if "error" in result:
            st.error(result["error"])
            continue
        answer = result["answer"]
        with st.container(border=True):
            show_markdown(answer.response or "—")
        m1, m2, m3 = st.columns(3)
        m1.metric(t("play.tokens"), f"{answer.usage.prompt_tokens}+{answer.usage.completion_tokens}")
        m2.metric(t("play.calls"), str(answer.usage.model_calls))
        m3.metric(t("play.latency"), f"{answer.latency_s:.2f} s")
        st.caption(t("play.model_used", model=answer.model_id))
        if answer.citations:
            st.markdown(f"**{t('play.chunks')}**")
            for citation in answer.citations:
                page = f" · p.{citation.page}" if citation.page is not None else ""
                name = label_text(Path(citation.source).name)
                label = f"[{citation.number}] {name}{page} · {citation.score:.3f}"
                with st.expander(label):
                    st.text(citation.text)
        elif answer.retrieved_contexts:
            st.markdown(f"**{t('play.chunks')}**")
            for index, text in enumerate(answer.retrieved_contexts, start=1):
                with st.expander(f"[{index}]"):
                    st.text(text)
        if answer.trace.steps:
            with st.expander(t("play.trace", n=len(answer.trace.steps))):
                for number, step in enumerate(answer.trace.steps, start=1):
                    st.caption(f"{number}. {step.kind}")
                    st.json(step.detail, expanded=False)
        if answer.prompt_truncated:
            st.warning(t("play.truncated"))
