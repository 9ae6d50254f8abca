"""The end-user chat: ``ladder chat-ui`` runs ``streamlit run ui/chat_app.py``.

Only the chat: it registers a single page with ``st.navigation`` (so no workbench page, nor
anything under ``ui/views/``, can be reached from it), answers with one configured strategy
(``LADDER_CHAT_STRATEGY``, ``LADDER_CHAT_KB``, the model from ``LADDER_MODEL``, adapter
included), streams the reply as the model produces it (``ui.streaming``), lists its sources,
and stores thumbs up/down with an optional correction or comment in the feedback table.
History lives in the browser session only.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from ui.common import error_text, settings
from ui.i18n import language_switch, t

st.set_page_config(
    page_title=os.environ.get("LADDER_CHAT_TITLE") or "Ladder chat", page_icon=":material/chat:"
)


def _sources(citations: list[dict[str, Any]]) -> None:
    if not citations:
        return
    st.caption(t("chat.sources"))
    for citation in citations:
        page = f" · {t('chat.page')} {citation['page']}" if citation.get("page") is not None else ""
        with st.expander(f"[{citation['number']}] {Path(citation['source']).name}{page}"):
            st.text(citation["text"])


def _feedback(index: int, turn: dict[str, Any], cfg: Any, strategy: str) -> None:
    if turn.get("feedback_id"):
        st.caption(t("chat.thanks"))
        return
    rating = st.feedback("thumbs", key=f"rating_{index}")
    if rating is None:
        return
    with st.form(f"feedback_{index}"):
        correction = st.text_area(t("chat.correction"), key=f"correction_{index}") if rating == 0 else ""
        comment = st.text_input(t("chat.comment"), key=f"comment_{index}")
        if st.form_submit_button(t("chat.send")):
            from assistant.feedback import record_feedback

            try:
                item = record_feedback(
                    cfg,
                    question=turn["question"],
                    answer=turn["content"],
                    rating="up" if rating == 1 else "down",
                    correction=correction.strip() or None,
                    comment=comment.strip() or None,
                    model=turn.get("model"),
                    strategy=strategy,
                    contexts=turn.get("contexts", []),
                    citations=turn.get("citations", []),
                    session_id=st.session_state["chat_session"],
                    source="chat",
                )
            except Exception as exc:
                st.error(error_text(exc))
                return
            turn["feedback_id"] = item.id
            st.rerun()


def chat() -> None:
    cfg = settings()
    strategy = os.environ.get("LADDER_CHAT_STRATEGY") or (
        "rag" if os.environ.get("LADDER_CHAT_KB") else "prompt"
    )
    kb = os.environ.get("LADDER_CHAT_KB") or None
    st.title(os.environ.get("LADDER_CHAT_TITLE") or t("chat.title"))
    st.caption(t("chat.caption", kb=kb or "—") if kb else t("chat.caption_no_kb"))
    st.session_state.setdefault("chat_session", uuid.uuid4().hex)
    history: list[dict[str, Any]] = st.session_state.setdefault("chat_history", [])
    if not history:
        st.info(t("chat.empty"), icon=":material/chat:")
    for index, turn in enumerate(history):
        with st.chat_message(turn["role"]):
            st.markdown(turn["content"])
            if turn["role"] == "assistant":
                _sources(turn.get("citations", []))
                if not turn.get("error"):
                    _feedback(index, turn, cfg, strategy)
    question = st.chat_input(t("chat.placeholder"))
    if not question or not question.strip():
        return
    history.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        from assistant.service import build_strategy
        from assistant.types import Question
        from ui.streaming import StreamedAnswer

        try:
            with st.spinner(t("chat.thinking")):
                overrides: dict[str, Any] = {"kb": kb} if kb else {}
                reply = StreamedAnswer(build_strategy(strategy, cfg, **overrides), Question(question))
                pieces = reply.text()
                first = next(pieces, "")  # the spinner turns until the first piece arrives
            st.write_stream(itertools.chain([first], pieces))
            answer = reply.result()
        except Exception as exc:
            message = t("chat.error") + "\n\n" + error_text(exc)
            st.error(message)
            history.append({"role": "assistant", "content": message, "error": True})
            return
        citations = [
            {"number": c.number, "source": c.source, "page": c.page, "chunk": c.chunk, "text": c.text}
            for c in answer.citations
        ]
        history.append(
            {
                "role": "assistant",
                "content": answer.response,
                "question": question,
                "citations": citations,
                "contexts": list(answer.retrieved_contexts),
                "model": answer.model_id,
            }
        )
    st.rerun()


try:
    language_switch(settings().language)
except Exception as exc:
    st.error(t("app.bad_settings") + "\n\n" + error_text(exc))
    st.stop()
st.navigation([st.Page(chat, title=t("chat.title"), url_path="chat", default=True)], position="hidden").run()
