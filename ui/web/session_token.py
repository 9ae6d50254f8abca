"""Signed session tokens: a reload keeps a signed-in user signed in.

Streamlit starts a new session (and a new ``st.session_state``) on every page load, so the
login gate (``ui.web.login``) gives a signed-in browser a token, kept in the page's address as a
query parameter, and accepts it on the next load instead of the password.

A token is ``<expires>.<nonce>.<signature>``: the signature is an HMAC-SHA256, with a server
secret, of the app it is for (``workbench`` or ``chat``), the expiry, the nonce and a digest
of the current password hash. Changing or removing the password therefore ends every
session, a token for the chat does not open the workbench, and a token cannot be made or
extended without the secret. The secret is 32 random bytes in ``LADDER_HOME/ui/session.key``,
created once with mode 0600; deleting it ends every session too. Signing out revokes the
token in this server process.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
from functools import lru_cache
from pathlib import Path

SESSION_TTL_S = 12 * 3600.0
SECRET_FILE = Path("ui") / "session.key"
_revoked: dict[str, float] = {}  # signature -> expiry, for tokens signed out before they expire
_lock = threading.Lock()


def secret_path(home: Path) -> Path:
    return Path(home) / SECRET_FILE


@lru_cache(maxsize=8)
def _secret_at(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        # Written whole under a temporary name, then linked into place: a second server
        # starting at the same moment either wins or reads the first one's secret.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:  # readable by others: tighten it (best effort)
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"{path}: the session secret is damaged; delete the file to make a new one")
    return secret


def server_secret(home: Path) -> bytes:
    """The secret that signs tokens, created on first use (mode 0600)."""
    return _secret_at(secret_path(home).resolve())


def _signature(secret: bytes, scope: str, expires: int, nonce: str, password_hash: str) -> str:
    bound = hashlib.sha256(password_hash.encode()).hexdigest()
    message = f"v1|{scope}|{expires}|{nonce}|{bound}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(
    secret: bytes, scope: str, password_hash: str, now: float | None = None, ttl_s: float = SESSION_TTL_S
) -> str:
    """A new token for ``scope``, valid ``ttl_s`` seconds from ``now``."""
    expires = int((time.time() if now is None else now) + ttl_s)
    nonce = secrets.token_urlsafe(12)
    return f"{expires}.{nonce}.{_signature(secret, scope, expires, nonce, password_hash)}"


def _parts(token: str) -> tuple[int, str, str] | None:
    expires, _, rest = token.partition(".")
    nonce, _, signature = rest.partition(".")
    if not (expires.isdigit() and nonce and signature):
        return None
    return int(expires), nonce, signature


def remaining_s(
    token: str | None, secret: bytes, scope: str, password_hash: str, now: float | None = None
) -> float:
    """Seconds ``token`` stays valid; 0 for a token that is missing, forged, tampered with,
    expired, revoked, for another app or for another password."""
    if not token or len(token) > 200:
        return 0.0
    parts = _parts(token)
    if parts is None:
        return 0.0
    expires, nonce, signature = parts
    expected = _signature(secret, scope, expires, nonce, password_hash)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return 0.0
    now = time.time() if now is None else now
    with _lock:
        if signature in _revoked:
            return 0.0
    return max(0.0, expires - now)


def revoke(token: str | None) -> None:
    """Refuse ``token`` from now on (in this server process)."""
    parts = _parts(token or "")
    if parts is None:
        return
    expires, _, signature = parts
    now = time.time()
    with _lock:
        for old in [s for s, until in _revoked.items() if until < now]:
            del _revoked[old]
        _revoked[signature] = float(expires)
