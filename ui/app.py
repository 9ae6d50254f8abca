"""The Ladder workbench: ``ladder ui`` runs ``streamlit run ui/app.py``.

Navigation, the password gate and the language switch live here; each page is a file under
``ui/views/`` that calls the same APIs as the CLI. Without the password (when one is set)
only the login page is registered, so no other page can be served.

The folder is deliberately not called ``pages/``: Streamlit treats a ``pages/`` folder next to
the main script as a v1 multipage app and, until some session has run ``st.navigation``,
serves ``/<file name>`` by running that file alone, past the password gate (and from the chat
app too, which shares this folder).
"""

from __future__ import annotations

import math

import streamlit as st

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from ui.auth import check_login
from ui.common import error_text, settings
from ui.i18n import language_switch, t

st.set_page_config(page_title="Ladder", page_icon=":material/stairs:", layout="wide")

try:
    cfg = settings()
except Exception as exc:  # a bad ladder.yaml or LADDER_* value: say so, serve nothing else
    st.error(t("app.bad_settings") + "\n\n" + error_text(exc))
    st.stop()

language_switch(cfg.language)


def _login() -> None:
    st.title(t("login.title"))
    st.caption(t("login.caption"))
    with st.form("login"):
        password = st.text_input(t("login.password"), type="password")
        if st.form_submit_button(t("login.submit")):
            # Wrong tries are counted per client address (None on loopback) and for everyone.
            address = st.context.ip_address
            client = address if isinstance(address, str) and address else "local"
            ok, wait_s = check_login(password, cfg.ui_password_hash or "", client)
            if ok:
                st.session_state["authenticated"] = True
                st.rerun()
            elif wait_s > 0:
                st.error(t("login.locked", minutes=math.ceil(wait_s / 60)))
            else:
                st.error(t("login.wrong"))


if cfg.ui_password_hash and not st.session_state.get("authenticated"):
    st.navigation([st.Page(_login, title=t("login.title"), url_path="login")], position="hidden").run()
    st.stop()

PAGES = [
    ("views/decide.py", "nav.decide", ":material/stairs:", "decide"),
    ("views/playground.py", "nav.playground", ":material/forum:", "playground"),
    ("views/knowledge.py", "nav.knowledge", ":material/library_books:", "knowledge"),
    ("views/evaluate.py", "nav.evaluate", ":material/analytics:", "evaluate"),
    ("views/finetune.py", "nav.finetune", ":material/model_training:", "finetune"),
    ("views/feedback.py", "nav.feedback", ":material/reviews:", "feedback"),
    ("views/settings.py", "nav.settings", ":material/settings:", "settings"),
]
navigation = st.navigation(
    [
        st.Page(path, title=t(key), icon=icon, url_path=url, default=index == 0)
        for index, (path, key, icon, url) in enumerate(PAGES)
    ]
)
with st.sidebar:
    st.caption(t("app.model", model=cfg.model))
    if cfg.ui_password_hash and st.button(t("login.logout")):
        st.session_state.pop("authenticated", None)
        st.rerun()
navigation.run()
