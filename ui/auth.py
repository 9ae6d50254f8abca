"""The workbench password: stored as a salted scrypt hash in the settings (``ui_password_hash``).

``ladder ui --password-set`` writes the hash into ladder.yaml; the plain password is never
stored. Without a hash the workbench is open (it binds 127.0.0.1 by default).
"""

from __future__ import annotations

import hashlib
import hmac
import os
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
