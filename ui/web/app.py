"""The Ladder workbench: ``ladder ui`` runs ``streamlit run ui/web/app.py``.

Navigation, the password gate and the language switch live here; each page is a file under
``ui/web/views/`` that calls the same APIs as the CLI. Without the password (when one is set)
only the login page is registered, so no other page can be served.

The folder is deliberately not called ``pages/``: Streamlit treats a ``pages/`` folder next to
the main script as a v1 multipage app and, until some session has run ``st.navigation``,
serves ``/<file name>`` by running that file alone, past the password gate (and from the chat
app too, which shares this folder).
"""

from __future__ import annotations

import streamlit as st

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from ui.web.common import PAGE_ICON, error_text, settings
from ui.web.i18n import language_switch, t
from ui.web.login import require_login, sign_out

# The page icon is an emoji (drawn into a data: URL): a ":material/...:" page icon makes the
# browser fetch it from fonts.gstatic.com on every load. Icons elsewhere use the bundled font.
st.set_page_config(page_title="Ladder", page_icon=PAGE_ICON, layout="wide")

try:
    cfg = settings()
except Exception as exc:  # a bad ladder.yaml or LADDER_* value: say so, serve nothing else
    st.error(t("app.bad_settings") + "\n\n" + error_text(exc))
    st.stop()

language_switch(cfg.language)
require_login(cfg, "workbench")  # without the password only the sign-in page is registered

PAGES = [
    ("views/decide.py", "nav.decide", ":material/stairs:", "decide"),
    ("views/deploy.py", "nav.deploy", ":material/rocket_launch:", "deploy"),
    ("views/playground.py", "nav.playground", ":material/forum:", "playground"),
    ("views/knowledge.py", "nav.knowledge", ":material/library_books:", "knowledge"),
    ("views/evaluate.py", "nav.evaluate", ":material/analytics:", "evaluate"),
    ("views/finetune.py", "nav.finetune", ":material/model_training:", "finetune"),
    ("views/feedback.py", "nav.feedback", ":material/reviews:", "feedback"),
    ("views/monitor.py", "nav.monitor", ":material/monitoring:", "monitor"),
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
        sign_out()
        st.rerun()
navigation.run()
