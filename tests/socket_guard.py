"""A socket guard: an audit hook that refuses any non-loopback connection or DNS lookup.

``install()`` adds the hook for the rest of the process (audit hooks cannot be removed),
so tests run guarded code in a subprocess: ``python -m tests.socket_guard <module> args``.
Every refused attempt is also printed to stderr as ``SOCKET-GUARD: ...`` at exit, so an
attempt that some library caught and swallowed is still seen by the test.
"""

from __future__ import annotations

import atexit
import ipaddress
import runpy
import socket
import sys
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
VIOLATIONS: list[str] = []
_LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"}


class NetworkAccessError(ConnectionError):
    pass


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name that would need DNS


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family == socket.AF_UNIX:
            return
        host = address[0] if isinstance(address, tuple) else address
    elif event == "socket.getaddrinfo" or event in {
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
    }:
        host = args[0]
    else:
        return
    if not _is_loopback(host):
        VIOLATIONS.append(f"{event} {host!r}")
        raise NetworkAccessError(f"socket guard: {event} to {host!r} is not allowed (offline mode)")


def _report() -> None:
    for violation in VIOLATIONS:
        print(f"SOCKET-GUARD: {violation}", file=sys.stderr)


def install() -> None:
    sys.addaudithook(_hook)
    atexit.register(_report)


if __name__ == "__main__":
    # python -m tests.socket_guard <module> [args...]: run a module under the guard.
    install()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
