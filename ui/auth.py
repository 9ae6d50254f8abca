"""The workbench password: stored as a salted scrypt hash in the settings (``ui_password_hash``).

``ladder ui --password-set`` writes the hash into ladder.yaml; the plain password is never
stored. Without a hash the workbench is open (it binds 127.0.0.1 by default).

Wrong passwords are limited on the server, not in the browser session (a new session would
reset that): ``MAX_FAILURES`` wrong passwords from one client within ``WINDOW_S`` seconds,
or ``GLOBAL_MAX_FAILURES`` from all clients together (a client's address can be spoofed),
refuse every attempt for ``COOLDOWN_S`` seconds, without checking the password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from assistant.errors import ConfigError

SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex); a new salt every time."""
    if len(password) < MIN_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_LENGTH} characters")
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


def login_wait_s(client: str) -> float:
    """Seconds before ``client`` may try a password; 0 when it may now."""
    return max(PER_CLIENT.wait_s(client), ALL_CLIENTS.wait_s(_EVERYONE))


def check_login(password: str, stored: str, client: str) -> tuple[bool, float]:
    """Whether ``password`` is right, and how long ``client`` must wait before the next try.

    A client that must wait is refused without the password being checked.
    """
    wait = login_wait_s(client)
    if wait > 0:
        return False, wait
    if verify_password(password, stored):
        PER_CLIENT.succeeded(client)
        return True, 0.0
    return False, max(PER_CLIENT.failed(client), ALL_CLIENTS.failed(_EVERYONE))


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
