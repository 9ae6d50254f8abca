"""The password gate of the workbench (``ui/web/app.py``) and the chat (``ui/web/chat_app.py``).

With a password set (``ui_password_hash``), ``require_login`` serves only a sign-in page until
the visitor has a valid session token (``ui.web.session_token``); the token is kept in the
session and in the page's address (``?session=...``), so a reload stays signed in.

Wrong passwords are counted (``ui.auth.check_login``) under the browser session and, where
one is known, the client's address: the address of the connection, or, with the setting
``ui_trust_proxy_header`` (say ``X-Forwarded-For``), the last address in that header, the one
the proxy in front of Ladder saw. Loopback addresses are not counted, since every visitor
through a local proxy has one, so one visitor's wrong tries do not lock out the others;
everyone's tries together still have a global cap.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Mapping

import streamlit as st

from assistant.settings import Settings
from ui.auth import check_login
from ui.web import session_token
from ui.web.i18n import t

TOKEN_PARAM = "session"
_TOKEN = "_login_token"
_SESSION_ID = "_login_session"


def _loopback(address: str) -> bool:
    if address.lower() == "localhost":
        return True
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(parsed, "ipv4_mapped", None)
    return bool(parsed.is_loopback or (mapped is not None and mapped.is_loopback))


def client_address(
    ip_address: str | None, headers: Mapping[str, str], trusted_header: str | None
) -> str | None:
    """The address a try is counted under; None for loopback or when none is known."""
    address = ip_address
    if trusted_header:
        forwarded = headers.get(trusted_header) or ""
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            address = hops[-1]  # the proxy appends the address it saw; earlier ones are the client's say
    if not address or _loopback(address):
        return None
    return address


def client_keys(
    session_id: str, ip_address: str | None, headers: Mapping[str, str], trusted_header: str | None
) -> list[str]:
    """The keys a wrong password is counted under: the session, and the address if known."""
    keys = [f"session:{session_id}"]
    address = client_address(ip_address, headers, trusted_header)
    if address:
        keys.append(f"address:{address}")
    return keys


def _keys(settings: Settings) -> list[str]:
    session_id = st.session_state.setdefault(_SESSION_ID, uuid.uuid4().hex)
    return client_keys(session_id, st.context.ip_address, st.context.headers, settings.ui_trust_proxy_header)


def _remember(token: str) -> None:
    st.session_state[_TOKEN] = token
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token


def _forget() -> None:
    st.session_state.pop(_TOKEN, None)
    if TOKEN_PARAM in st.query_params:
        del st.query_params[TOKEN_PARAM]


def verify_current_password(settings: Settings, password: str) -> tuple[bool, float]:
    """Check ``password`` against the stored hash, counted like a sign-in try (the Settings
    page asks for it before changing or removing the password)."""
    return check_login(password, settings.ui_password_hash or "", _keys(settings))


def locked_message(wait_s: float) -> str:
    return t("login.locked", minutes=max(1, math.ceil(wait_s / 60)))


def signed_in(settings: Settings, scope: str) -> bool:
    """Whether this session may see ``scope`` (always, without a password); keeps the token."""
    stored = settings.ui_password_hash
    if not stored:
        return True
    secret = session_token.server_secret(settings.home)
    token = st.session_state.get(_TOKEN) or st.query_params.get(TOKEN_PARAM)
    left = session_token.remaining_s(token, secret, scope, stored)
    if left <= 0 and token != st.query_params.get(TOKEN_PARAM):  # another tab may have a newer one
        token = st.query_params.get(TOKEN_PARAM)
        left = session_token.remaining_s(token, secret, scope, stored)
    if left <= 0:
        _forget()
        return False
    assert token is not None
    if left < session_token.SESSION_TTL_S / 2:  # in use: extend it
        token = session_token.issue(secret, scope, stored)
    _remember(token)
    return True


def renew(settings: Settings, scope: str, password_hash: str) -> None:
    """A token for the new password (the Settings page has just changed it)."""
    _remember(session_token.issue(session_token.server_secret(settings.home), scope, password_hash))


def sign_out() -> None:
    session_token.revoke(st.session_state.get(_TOKEN))
    _forget()


def require_login(settings: Settings, scope: str) -> None:
    """Return when the visitor may see the app; otherwise serve only the sign-in page and stop."""
    if signed_in(settings, scope):
        return
    stored = settings.ui_password_hash or ""

    def sign_in() -> None:
        st.title(t("login.title"))
        st.caption(t("login.caption_chat") if scope == "chat" else t("login.caption"))
        with st.form("login"):
            password = st.text_input(t("login.password"), type="password")
            if st.form_submit_button(t("login.submit")):
                ok, wait_s = check_login(password, stored, _keys(settings))
                if ok:
                    _remember(session_token.issue(session_token.server_secret(settings.home), scope, stored))
                    st.rerun()
                elif wait_s > 0:
                    st.error(locked_message(wait_s))
                else:
                    st.error(t("login.wrong"))

    st.navigation([st.Page(sign_in, title=t("login.title"), url_path="login")], position="hidden").run()
    st.stop()
