"""Signing in once per browser, not once per page load: the session token (an HMAC with a
server secret kept under LADDER_HOME, mode 0600, with an expiry) rides in the page's address,
so a reload stays signed in, and a tampered, expired, revoked or foreign token does not.
The chat has the same gate as the workbench."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ui import auth
from ui.web import session_token

PASSWORD = "correct horse"
Open = Callable[..., Any]


@pytest.fixture(autouse=True)
def fresh_throttles() -> Any:
    for throttle in (auth.PER_CLIENT, auth.ALL_CLIENTS):
        throttle.reset()
    yield
    for throttle in (auth.PER_CLIENT, auth.ALL_CLIENTS):
        throttle.reset()


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> str:
    stored = auth.hash_password(PASSWORD)
    monkeypatch.setenv("LADDER_UI_PASSWORD_HASH", stored)
    return stored


def sign_in(at: Any, password: str = PASSWORD) -> Any:
    at.text_input[0].input(password)
    return at.button[0].click().run()


def reload_with(app: Path, token: str | None) -> Any:
    """A new browser session (what a reload is) opening the address with ``?session=token``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(app), default_timeout=60)
    if token is not None:
        at.query_params["session"] = token
    return at.run()


def test_a_reload_with_the_token_stays_signed_in(workbench: Open, locked: str) -> None:
    from tests.ui.helpers import APP

    at = workbench()
    assert at.title[0].value == "Sign in"
    sign_in(at)
    assert at.title[0].value == "Decide"
    token = at.query_params["session"]
    assert isinstance(token, str) and token.count(".") == 2 and PASSWORD not in token
    again = reload_with(APP, token)
    assert again.title[0].value == "Decide" and not again.error
    again.switch_page("views/knowledge.py").run()
    assert again.title[0].value == "Knowledge base"
    assert again.query_params["session"] == token  # kept in the address on every page
    assert reload_with(APP, None).title[0].value == "Sign in"  # no token: the password again


def test_a_tampered_expired_foreign_or_revoked_token_is_refused(
    workbench: Open, locked: str, isolated_home: Path
) -> None:
    from tests.ui.helpers import APP, CHAT_APP

    at = sign_in(workbench())
    token = at.query_params["session"]
    expires, nonce, signature = token.split(".")
    later = str(int(expires) + 10 * 24 * 3600)
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    secret = session_token.server_secret(isolated_home)
    expired = session_token.issue(secret, "workbench", locked, ttl_s=-1)
    other_password = session_token.issue(secret, "workbench", auth.hash_password("another passphrase"))
    forged = session_token.issue(b"x" * 32, "workbench", locked)
    for bad in (
        f"{later}.{nonce}.{signature}",
        f"{expires}.{nonce}.{flipped}",
        expired,
        other_password,
        forged,
        "junk",
    ):
        refused = reload_with(APP, bad)
        assert refused.title[0].value == "Sign in", bad
        assert "session" not in refused.query_params  # the bad token is dropped from the address
    # A workbench token does not open the chat, and the chat's does not open the workbench.
    assert reload_with(CHAT_APP, token).title[0].value == "Sign in"
    # Signing out revokes the token: a reload with it asks for the password again.
    sign_out = next(b for b in at.sidebar.button if b.label == "Sign out")
    sign_out.click().run()
    assert at.title[0].value == "Sign in" and "session" not in at.query_params
    assert reload_with(APP, token).title[0].value == "Sign in"


def test_the_token_expires_after_its_lifetime(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> None:
    secret = session_token.server_secret(isolated_home)
    stored = auth.hash_password(PASSWORD)
    token = session_token.issue(secret, "chat", stored, now=1000.0)
    ttl = session_token.SESSION_TTL_S
    assert session_token.remaining_s(token, secret, "chat", stored, now=1000.0) == ttl
    assert session_token.remaining_s(token, secret, "chat", stored, now=1000.0 + ttl - 1) == 1.0
    assert session_token.remaining_s(token, secret, "chat", stored, now=1000.0 + ttl) == 0.0
    assert session_token.remaining_s(token, secret, "workbench", stored, now=1000.0) == 0.0


def test_the_server_secret_is_private_and_kept(isolated_home: Path) -> None:
    session_token._secret_at.cache_clear()
    secret = session_token.server_secret(isolated_home)
    path = session_token.secret_path(isolated_home)
    assert path.is_file() and path.read_bytes() == secret and len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session_token._secret_at.cache_clear()
    assert session_token.server_secret(isolated_home) == secret  # the same after a restart


def test_the_chat_has_the_same_password_gate(chat_app: Open, locked: str) -> None:
    from tests.ui.helpers import CHAT_APP

    at = chat_app()
    assert at.title[0].value == "Sign in" and not at.chat_input
    assert "This assistant is protected by a password." in [c.value for c in at.caption]
    sign_in(at, "wrong password")
    assert [e.value for e in at.error] == ["Wrong password."] and not at.chat_input
    sign_in(at)
    assert at.title[0].value == "Ask the assistant" and len(at.chat_input) == 1
    at.chat_input[0].set_value("hello").run()
    assert at.session_state["chat_history"][1]["content"] == "[fake] hello"
    token = at.query_params["session"]
    again = reload_with(CHAT_APP, token)
    assert again.title[0].value == "Ask the assistant"
    next(b for b in again.sidebar.button if b.label == "Sign out").click().run()
    assert again.title[0].value == "Sign in" and reload_with(CHAT_APP, token).title[0].value == "Sign in"
