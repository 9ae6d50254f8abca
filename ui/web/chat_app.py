"""The end-user chat: ``ladder chat-ui`` runs ``streamlit run ui/web/chat_app.py``.

Only the chat: it registers a single page with ``st.navigation`` (so no workbench page, nor
anything under ``ui/web/views/``, can be reached from it), answers with one configured strategy
(``LADDER_CHAT_STRATEGY``, ``LADDER_CHAT_KB``, the model from ``LADDER_MODEL``, adapter
included), streams the reply as the model produces it (``ui.web.streaming``), lists its sources,
and stores thumbs up/down with an optional correction or comment in the feedback table.
History lives in the browser session only.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from ui.web.common import CHAT_ICON, error_text, settings
from ui.web.i18n import language_switch, t
from ui.web.login import require_login, sign_out
from ui.web.model_text import label_text, safe_markdown, show_markdown
from ui.web.streaming import StreamedAnswer

st.set_page_config(page_title=os.environ.get("LADDER_CHAT_TITLE") or "Ladder chat", page_icon=CHAT_ICON)


def _sources(citations: list[dict[str, Any]]) -> None:
    if not citations:
        return
    st.caption(t("chat.sources"))
    for citation in citations:
        page = f" · {t('chat.page')} {citation['page']}" if citation.get("page") is not None else ""
        with st.expander(f"[{citation['number']}] {label_text(Path(citation['source']).name)}{page}"):
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


def _queued(question: str) -> None:
    with st.chat_message("user"):
        show_markdown(question)
        st.caption(t("chat.queued"))


def _stream(reply: StreamedAnswer) -> None:
    """Draw ``reply`` as it arrives, from what an interrupted run had already shown."""
    shown = st.empty()
    if reply.streamed:
        shown.markdown(safe_markdown(reply.streamed))
    pieces = reply.text()
    if not reply.streamed:
        with st.spinner(t("chat.thinking")):  # it turns until the first piece arrives
            next(pieces, None)
    drawn = 0.0
    for _ in itertools.chain([None], pieces):
        if time.monotonic() - drawn > 0.05:  # at most 20 redraws a second of the whole text
            shown.markdown(safe_markdown(reply.streamed))
            drawn = time.monotonic()
    shown.markdown(safe_markdown(reply.streamed))


def _finish(pending: dict[str, Any]) -> dict[str, Any]:
    """Show the pending answer to its end; the history turn it makes."""
    question, reply = pending["question"], pending["reply"]
    try:
        _stream(reply)
        answer = reply.result()
    except Exception as exc:
        message = t("chat.error") + "\n\n" + error_text(exc)
        st.error(message)
        return {"role": "assistant", "content": message, "error": True}
    if not pending.get("logged"):  # once, even when a rerun finishes the same answer again
        from assistant.service import log_served

        # Served to a chat user: the answer log (assistant.monitoring) gets it, with its session.
        pending["logged"] = True
        log_served(reply.strategy, [answer], source="chat", latencies_s=[reply.latency_s],
                   session_id=st.session_state.get("chat_session"))  # fmt: skip
    citations = [
        {"number": c.number, "source": c.source, "page": c.page, "chunk": c.chunk, "text": c.text}
        for c in answer.citations
    ]
    return {
        "role": "assistant",
        "content": answer.response,
        "question": question,
        "citations": citations,
        "contexts": list(answer.retrieved_contexts),
        "model": answer.model_id,
    }


def _start(question: str, cfg: Any, strategy: str, kb: str | None) -> dict[str, Any]:
    from assistant.service import build_strategy
    from assistant.types import Question

    overrides: dict[str, Any] = {"kb": kb} if kb else {}
    return {
        "question": question,
        "reply": StreamedAnswer(build_strategy(strategy, cfg, **overrides), Question(question)),
    }


def chat() -> None:
    """One answer at a time. A question sent while an answer is still streaming interrupts
    this script (Streamlit reruns it with the new input), not the answer: the answer lives in
    the session (``chat_pending``) and is finished first, and the new question waits in
    ``chat_queue``, so no answer is lost and every answer can be rated."""
    cfg = settings()
    strategy = os.environ.get("LADDER_CHAT_STRATEGY") or (
        "rag" if os.environ.get("LADDER_CHAT_KB") else "prompt"
    )
    kb = os.environ.get("LADDER_CHAT_KB") or None
    st.title(os.environ.get("LADDER_CHAT_TITLE") or t("chat.title"))
    st.caption(t("chat.caption", kb=kb or "—") if kb else t("chat.caption_no_kb"))
    st.session_state.setdefault("chat_session", uuid.uuid4().hex)
    history: list[dict[str, Any]] = st.session_state.setdefault("chat_history", [])
    waiting: list[str] = st.session_state.setdefault("chat_queue", [])
    question = st.chat_input(t("chat.placeholder"))
    if question and question.strip():
        waiting.append(question)
    pending: dict[str, Any] | None = st.session_state.get("chat_pending")
    if not history and not waiting and pending is None:
        st.info(t("chat.empty"), icon=":material/chat:")
    for index, turn in enumerate(history):
        with st.chat_message(turn["role"]):
            if turn.get("error"):
                st.error(safe_markdown(turn["content"]))
                continue
            show_markdown(turn["content"])
            if turn["role"] == "assistant":
                _sources(turn.get("citations", []))
                _feedback(index, turn, cfg, strategy)
    if pending is None and waiting:
        with st.chat_message("user"):
            show_markdown(waiting[0])
        try:
            pending = _start(waiting[0], cfg, strategy, kb)
        except Exception as exc:
            message = t("chat.error") + "\n\n" + error_text(exc)
            history += [
                {"role": "user", "content": waiting.pop(0)},
                {"role": "assistant", "content": message, "error": True},
            ]
            st.rerun()
        # No drawing between these lines: a run can be interrupted at any draw, and the
        # question must be either waiting or answering, never neither.
        st.session_state["chat_pending"] = pending
        history.append({"role": "user", "content": waiting.pop(0)})
    if pending is None:
        return
    answer_slot = st.container()
    for later in waiting:
        _queued(later)
    with answer_slot, st.chat_message("assistant"):
        turn = _finish(pending)
    history.append(turn)
    st.session_state["chat_pending"] = None
    st.rerun()


try:
    chat_settings = settings()
except Exception as exc:
    st.error(t("app.bad_settings") + "\n\n" + error_text(exc))
    st.stop()
language_switch(chat_settings.language)
require_login(chat_settings, "chat")  # the same password as the workbench, a token of its own
if chat_settings.ui_password_hash and st.sidebar.button(t("login.logout")):
    sign_out()
    st.rerun()
st.navigation([st.Page(chat, title=t("chat.title"), url_path="chat", default=True)], position="hidden").run()
