"""The password of the workbench and the chat: stored as a salted scrypt hash in the settings
(``ui_password_hash``).

``ladder ui --password-set`` and the Settings page write the hash into ladder.yaml; the plain
password is never stored. Without a hash both apps are open (they bind 127.0.0.1 by default).
A new password must pass ``password_problem``: at least ``MIN_LENGTH`` characters, not one
character or a short pattern repeated, not a run such as ``abcdefghij``, not a common password.

Wrong passwords are limited on the server, not in the browser session alone (a new session
would reset that). A try is counted under several keys (``check_login``'s ``clients``): the
browser session, and the client's address where one is known (see ``ui.web.login``);
``MAX_FAILURES`` wrong passwords under one key within ``WINDOW_S`` seconds lock that key, and
``GLOBAL_MAX_FAILURES`` from everyone together lock everyone (sessions are free and addresses
can be spoofed); a locked try is refused for ``COOLDOWN_S`` seconds without the password being
checked. A signed-in user keeps a session token (``ui.web.session_token``), so a lock-out never
signs out the owner.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path

from assistant.errors import ConfigError

SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
MIN_LENGTH = 10
MIN_DISTINCT = 5
# What ``password_problem`` returns, in words (the UI has them in both languages).
PROBLEMS = {
    "short": f"it must have at least {MIN_LENGTH} characters",
    "repetitive": f"it repeats itself (use at least {MIN_DISTINCT} different characters, not a pattern)",
    "sequence": "it is a run of letters, digits or keys (like abcdefghij or qwertyuiop)",
    "common": "it is a common password, or one with digits or signs around it",
}
# A few of the most used passwords; a password is refused when it is one of them once digits
# and signs around it are stripped and look-alike signs read as letters (P@ssw0rd2024! -> password).
COMMON_PASSWORDS = frozenset(
    """password qwerty letmein welcome iloveyou admin administrator changeme trustno1 football
    baseball dragon monkey sunshine princess master shadow superman batman starwars whatever
    secret ladder workbench login default guest root qwertz azerty abc abcd abcdef qazwsx
    qazwsxedc zaqxsw zaq1zaq1 1qaz2wsx 1qaz2wsx3edc 1q2w3e4r 1q2w3e4r5t qwe123 hello helloworld
    passphrase mypassword yourpassword newpassword changeit passwort motdepasse loveyou
    opensesame computer internet freedom""".split()  # noqa: SIM905  (a word list reads better as words)
)
_LOOKALIKE = str.maketrans({"0": "o", "@": "a", "4": "a", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s"})
_KEY_RUNS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "azertyuiop")


def password_problem(password: str) -> str | None:
    """Why ``password`` is too weak (a key of ``PROBLEMS``), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return "short"
    lowered = password.lower()
    if len(set(lowered)) < MIN_DISTINCT or any(
        lowered == (lowered[:period] * len(lowered))[: len(lowered)]
        for period in range(1, len(lowered) // 2 + 1)
    ):
        return "repetitive"
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(lowered)}
    keys = re.sub(r"[^a-z0-9]", "", lowered)  # "asdfghjkl;" and "!@#$%^&*()" are runs of keys
    if steps in ({1}, {-1}) or any(keys in run or keys[::-1] in run for run in _KEY_RUNS):
        return "sequence"
    core = lowered.strip("0123456789!@#$%^&*()-_=+.,;:?~ ").translate(_LOOKALIKE)
    if lowered in COMMON_PASSWORDS or core in COMMON_PASSWORDS or core.replace(" ", "") in COMMON_PASSWORDS:
        return "common"
    return None


def check_strength(password: str) -> None:
    """Raise ``ConfigError`` saying why ``password`` is too weak."""
    problem = password_problem(password)
    if problem is not None:
        raise ConfigError(
            f"the password is too weak: {PROBLEMS[problem]}",
            hint=f"use a passphrase of {MIN_LENGTH} or more characters, e.g. four unrelated words",
        )


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex); a new salt every time. A weak password is refused."""
    check_strength(password)
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{SCHEME}${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored hash; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != SCHEME:
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), expected)


MAX_FAILURES = 5
GLOBAL_MAX_FAILURES = 20
WINDOW_S = 300.0
COOLDOWN_S = 300.0
_MAX_CLIENTS = 10_000  # clients remembered at most; the least recently seen are forgotten first


class LoginThrottle:
    """Wrong passwords per key in a sliding window; ``max_failures`` of them lock the key.

    Streamlit answers each browser session on a thread of its own, hence the lock.
    """

    def __init__(
        self,
        max_failures: int,
        window_s: float = WINDOW_S,
        cooldown_s: float = COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures <= 0:
            raise ValueError(f"max_failures must be > 0, got {max_failures}")
        self.max_failures, self.window_s, self.cooldown_s = max_failures, window_s, cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked_until: dict[str, float] = {}

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            return max(0.0, self._locked_until.get(key, 0.0) - self.clock())

    def failed(self, key: str) -> float:
        """Count a wrong password; the seconds ``key`` must now wait (0 while under the limit)."""
        with self._lock:
            now = self.clock()
            failures = self._failures.pop(key, None) or deque()
            failures.append(now)
            while failures and failures[0] <= now - self.window_s:
                failures.popleft()
            if len(failures) >= self.max_failures:
                self._locked_until[key] = now + self.cooldown_s
                failures.clear()
            self._failures[key] = failures
            self._forget_old(now)
            return max(0.0, self._locked_until.get(key, 0.0) - now)

    def _forget_old(self, now: float) -> None:
        while len(self._failures) > _MAX_CLIENTS:
            self._failures.popitem(last=False)
        if len(self._locked_until) > _MAX_CLIENTS:
            for key in [k for k, until in self._locked_until.items() if until <= now]:
                del self._locked_until[key]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._locked_until.clear()


PER_CLIENT = LoginThrottle(MAX_FAILURES)
ALL_CLIENTS = LoginThrottle(GLOBAL_MAX_FAILURES)
_EVERYONE = "*"


def _keys(clients: str | Sequence[str]) -> list[str]:
    return [clients] if isinstance(clients, str) else list(clients)


def login_wait_s(clients: str | Sequence[str]) -> float:
    """Seconds before a try counted under ``clients`` may be made; 0 when it may now."""
    return max([ALL_CLIENTS.wait_s(_EVERYONE), *(PER_CLIENT.wait_s(key) for key in _keys(clients))])


def check_login(password: str, stored: str, clients: str | Sequence[str]) -> tuple[bool, float]:
    """Whether ``password`` is right, and how long the caller must wait before the next try.

    ``clients`` are the keys the try is counted under (a session, an address); a try that
    must wait under any of them is refused without the password being checked.
    """
    keys = _keys(clients)
    wait = login_wait_s(keys)
    if wait > 0:
        return False, wait
    if verify_password(password, stored):
        for key in keys:
            PER_CLIENT.succeeded(key)
        return True, 0.0
    return False, max([ALL_CLIENTS.failed(_EVERYONE), *(PER_CLIENT.failed(key) for key in keys)])


def write_setting(path: Path, key: str, value: object) -> None:
    """Set one key of a ladder.yaml (created if missing), keeping the others."""
    import yaml

    data: dict[str, object] = {}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        data = loaded
    section = data["settings"] if isinstance(data.get("settings"), dict) else data
    assert isinstance(section, dict)
    if value is None:
        section.pop(key, None)
    else:
        section[key] = value
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
