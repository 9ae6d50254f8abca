"""The login of the workbench and the chat refuses further tries after too many wrong
passwords, until a cool-down has passed: per browser session, per client address where one
is known, and for everyone together; the limit is kept on the server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ui import auth

PASSWORD = "correct horse"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """A fake clock for both throttles, and no failures left over for the next test."""
    fake = Clock()
    for throttle in (auth.PER_CLIENT, auth.ALL_CLIENTS):
        throttle.reset()
        monkeypatch.setattr(throttle, "clock", fake)
    yield fake
    for throttle in (auth.PER_CLIENT, auth.ALL_CLIENTS):
        throttle.reset()


@pytest.fixture
def login(clock: Clock, workbench: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    monkeypatch.setenv("LADDER_UI_PASSWORD_HASH", auth.hash_password(PASSWORD))
    return workbench


def attempt(at: Any, password: str) -> Any:
    at.text_input[0].input(password)
    return at.button[0].click().run()


def errors(at: Any) -> list[str]:
    return [e.value for e in at.error]


def test_five_wrong_passwords_lock_their_session_until_the_cool_down(login: Any, clock: Clock) -> None:
    at = login()
    for _ in range(auth.MAX_FAILURES - 1):
        assert errors(attempt(at, "wrong password")) == ["Wrong password."]
    assert errors(attempt(at, "wrong password")) == ["Too many wrong passwords. Try again in 5 min."]
    # The right password is refused too, without being checked.
    assert errors(attempt(at, PASSWORD)) == ["Too many wrong passwords. Try again in 5 min."]
    assert at.title[0].value == "Sign in"
    clock.now += auth.COOLDOWN_S - 30
    assert errors(attempt(at, PASSWORD)) == ["Too many wrong passwords. Try again in 1 min."]
    clock.now += 31
    attempt(at, PASSWORD)
    assert not at.error and at.title[0].value != "Sign in"


def test_wrong_passwords_from_another_visitor_do_not_lock_the_owner_out(login: Any, clock: Clock) -> None:
    """Every visitor on loopback (or behind a local proxy) has the same address: counting by
    address let anyone lock the owner out with five tries. The count is per session now."""
    stranger = login()
    for _ in range(auth.MAX_FAILURES):
        attempt(stranger, "wrong password")
    assert errors(attempt(stranger, PASSWORD)) == ["Too many wrong passwords. Try again in 5 min."]
    owner = login()
    attempt(owner, PASSWORD)
    assert not owner.error and owner.title[0].value != "Sign in"


def test_wrong_passwords_from_many_sessions_still_hit_the_global_cap(login: Any, clock: Clock) -> None:
    # A new session per try escapes the per-session count, not the count of everyone.
    for _ in range(auth.GLOBAL_MAX_FAILURES):
        attempt(login(), "wrong password")
    fresh = login()
    assert errors(attempt(fresh, PASSWORD)) == ["Too many wrong passwords. Try again in 5 min."]
    clock.now += auth.COOLDOWN_S
    attempt(fresh, PASSWORD)
    assert not fresh.error and fresh.title[0].value != "Sign in"


def test_a_locked_login_is_refused_without_checking_the_password(
    login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(auth.GLOBAL_MAX_FAILURES):
        auth.check_login("wrong", auth.hash_password(PASSWORD), f"session:{number}")
    checked: list[str] = []
    monkeypatch.setattr(auth, "verify_password", lambda password, stored: checked.append(password) or True)
    at = login()
    at.session_state["lang"] = "zh"
    at.run()
    assert errors(attempt(at, PASSWORD)) == ["密码错误次数过多，请 5 分钟后再试。"]
    assert checked == []


def test_a_try_is_counted_under_the_session_and_a_known_address(clock: Clock) -> None:
    from ui.web.login import client_keys

    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.20"}
    assert client_keys("s1", None, {}, None) == ["session:s1"]  # loopback: no address
    assert client_keys("s1", "127.0.0.1", forwarded, None) == ["session:s1"]  # header not trusted
    assert client_keys("s1", "::ffff:127.0.0.1", {}, None) == ["session:s1"]
    assert client_keys("s1", "10.0.0.7", {}, None) == ["session:s1", "address:10.0.0.7"]
    # Behind a trusted proxy: the last hop, the one the proxy itself saw (the client writes the rest).
    assert client_keys("s1", "127.0.0.1", forwarded, "X-Forwarded-For") == [
        "session:s1",
        "address:198.51.100.20",
    ]
    assert client_keys("s1", "127.0.0.1", {}, "X-Forwarded-For") == ["session:s1"]
    # Two sessions from one forwarded address share its count; a third address does not.
    stored = auth.hash_password(PASSWORD)
    for number in range(auth.MAX_FAILURES - 1):
        assert auth.check_login("wrong", stored, [f"session:{number}", "address:198.51.100.20"]) == (
            False,
            0.0,
        )
    assert auth.check_login("wrong", stored, ["session:x", "address:198.51.100.20"]) == (
        False,
        auth.COOLDOWN_S,
    )
    assert auth.check_login(PASSWORD, stored, ["session:y", "address:198.51.100.20"]) == (
        False,
        auth.COOLDOWN_S,
    )
    assert auth.check_login(PASSWORD, stored, ["session:y", "address:198.51.100.21"]) == (True, 0.0)


def test_the_proxy_header_setting_is_read_and_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.settings import load_settings

    assert load_settings().ui_trust_proxy_header is None
    monkeypatch.setenv("LADDER_UI_TRUST_PROXY_HEADER", "X-Real-IP")
    assert load_settings().ui_trust_proxy_header == "X-Real-IP"


def test_wrong_passwords_spread_over_more_than_the_window_do_not_lock(clock: Clock) -> None:
    stored = auth.hash_password(PASSWORD)
    for _ in range(3 * auth.MAX_FAILURES):
        ok, wait = auth.check_login("wrong", stored, "10.0.0.7")
        assert (ok, wait) == (False, 0.0)
        clock.now += auth.WINDOW_S / (auth.MAX_FAILURES - 1)
    assert auth.check_login(PASSWORD, stored, "10.0.0.7") == (True, 0.0)


def test_a_right_password_clears_the_count_and_clients_are_counted_apart(clock: Clock) -> None:
    stored = auth.hash_password(PASSWORD)
    for _ in range(auth.MAX_FAILURES - 1):
        auth.check_login("wrong", stored, "10.0.0.7")
    assert auth.check_login(PASSWORD, stored, "10.0.0.7") == (True, 0.0)
    for _ in range(auth.MAX_FAILURES - 1):
        assert auth.check_login("wrong", stored, "10.0.0.7") == (False, 0.0)
    assert auth.check_login("wrong", stored, "10.0.0.8") == (False, 0.0)  # another client
    assert auth.check_login("wrong", stored, "10.0.0.7") == (False, auth.COOLDOWN_S)
    assert auth.login_wait_s("10.0.0.7") == auth.COOLDOWN_S and auth.login_wait_s("10.0.0.8") == 0.0


def test_many_clients_together_lock_everyone(clock: Clock) -> None:
    # A client's address can be spoofed, so the wrong passwords of all clients count too.
    stored = auth.hash_password(PASSWORD)
    for number in range(auth.GLOBAL_MAX_FAILURES - 1):
        assert auth.check_login("wrong", stored, f"10.0.1.{number}") == (False, 0.0)
    assert auth.check_login("wrong", stored, "10.0.2.1") == (False, auth.COOLDOWN_S)
    assert auth.check_login(PASSWORD, stored, "10.0.3.1") == (False, auth.COOLDOWN_S)
    clock.now += auth.COOLDOWN_S
    assert auth.check_login(PASSWORD, stored, "10.0.3.1") == (True, 0.0)


def test_the_throttle_forgets_the_oldest_clients_beyond_its_bound(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_MAX_CLIENTS", 3)
    throttle = auth.LoginThrottle(2, clock=clock)
    for client in ("a", "b", "c", "d"):
        throttle.failed(client)
    assert throttle.failed("a") == 0.0  # "a" was forgotten: this is its first failure again
    assert throttle.failed("d") == auth.COOLDOWN_S
    with pytest.raises(ValueError, match="max_failures"):
        auth.LoginThrottle(0)
