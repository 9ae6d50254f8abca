"""Knowledge-base vectors on a Chroma server (``kb_store: chroma-server``).

The server holds one collection per knowledge base, named ``ladder-<kb name>-<store id>``: the
store id is 12 random hex digits drawn when the knowledge base is created and recorded in its
kb.json (``store.collection``), so two Ladder homes (two machines, or two users with the same
home path) that both create a knowledge base ``docs`` on one server get two collections. The
collection's metadata records the embedding model (``ladder_embedding_model``) and the
knowledge base (``ladder_kb``); ``KnowledgeIndex.collection`` refuses a collection whose model
is not the knowledge base's.

kb.json, the BM25 index and the ``.lock`` that serializes writers stay local, under
``LADDER_HOME/kb/<name>/``, exactly as in embedded mode.

The auth token is read from ``LADDER_CHROMA_TOKEN`` only and sent as ``Authorization: Bearer
<token>`` (the header Chroma's token authentication and most reverse proxies read). It is never
printed, logged, or written to a file; error messages name the server, not the token.

Errors: a server that cannot be reached (refused, timed out, not speaking HTTP/TLS) and one that
refuses the request (HTTP 401/403) are ``BackendError``s (exit 5) with a hint. Every call on the
client and the collection goes through ``Guarded``, which turns those failures into the same
errors, so a server that goes away mid-run fails with one line, not a traceback.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assistant.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from assistant.settings import Settings

KIND = "chroma-server"
TOKEN_ENV = "LADDER_CHROMA_TOKEN"
EMBEDDER_KEY = "ladder_embedding_model"
KB_KEY = "ladder_kb"
CONNECT_TIMEOUT_S = 10.0


# ---- naming and settings ------------------------------------------------------------------
def collection_name(kb_name: str, store_id: str) -> str:
    """Chroma's rule: 3-512 of [a-zA-Z0-9._-], first and last alphanumeric (KB names and the
    hex id satisfy it)."""
    return f"ladder-{kb_name}-{store_id}"


def new_store_record(kb_name: str) -> dict[str, str]:
    """What kb.json records about the store of a new knowledge base on a server."""
    return {"kind": KIND, "collection": collection_name(kb_name, uuid.uuid4().hex[:12])}


def address(settings: Settings) -> str:
    host = settings.chroma_host
    return f"[{host}]:{settings.chroma_port}" if ":" in host else f"{host}:{settings.chroma_port}"


def _url(settings: Settings, path: str) -> str:
    scheme = "https" if settings.chroma_tls else "http"
    return f"{scheme}://{address(settings)}{path}"


def _headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def token_is_set() -> bool:
    return bool(_headers())


# ---- errors -------------------------------------------------------------------------------
def _start_hint(settings: Settings) -> str:
    return (
        f"start one with `chroma run --path DIR --port {settings.chroma_port}`, or set chroma_host/"
        "chroma_port (and chroma_tls) to a running server; kb_store: embedded keeps vectors in LADDER_HOME"
    )


def unreachable(settings: Settings, reason: str) -> BackendError:
    scheme = "https" if settings.chroma_tls else "http"
    return BackendError(
        f"the Chroma server at {address(settings)} ({scheme}) is unreachable: {reason}",
        hint=_start_hint(settings),
    )


def refused(settings: Settings, status: int | str) -> BackendError:
    told = "a token was sent" if token_is_set() else "no token was sent"
    return BackendError(
        f"the Chroma server at {address(settings)} refused the request (HTTP {status}; {told})",
        hint=f"set {TOKEN_ENV} to the server's token (it is read from the environment only)",
    )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def translate(exc: BaseException, settings: Settings) -> BackendError | None:
    """The BackendError for a failure to reach or be let into the server; None for anything else."""
    import httpx
    from chromadb.errors import AuthorizationError, ChromaAuthError

    for cause in _chain(exc):
        if isinstance(cause, BackendError):
            return cause
        if isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code in (401, 403):
            return refused(settings, cause.response.status_code)
        if isinstance(cause, AuthorizationError | ChromaAuthError):
            return refused(settings, cause.code())
        if isinstance(cause, httpx.TransportError):
            return unreachable(settings, f"{type(cause).__name__}: {cause}".rstrip(": "))
    return None


class Guarded:
    """A chromadb client or collection whose calls raise ``BackendError`` when the server is
    gone or refuses; other errors pass through unchanged."""

    def __init__(self, target: Any, settings: Settings) -> None:
        self._target = target
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        return self._wrap(value)

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        settings = self._settings

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                problem = translate(exc, settings)
                if problem is None:
                    raise
                raise problem from None

        return call


# ---- connecting ----------------------------------------------------------------------------
def heartbeat(settings: Settings) -> float:
    """Ask the server whether it is there; the round trip in seconds, or BackendError."""
    import httpx

    started = time.perf_counter()
    try:
        response = httpx.get(
            _url(settings, "/api/v2/heartbeat"), headers=_headers(), timeout=CONNECT_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise unreachable(settings, f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    if response.status_code in (401, 403):
        raise refused(settings, response.status_code)
    if response.status_code != 200:
        raise unreachable(settings, f"the heartbeat answered HTTP {response.status_code}")
    return time.perf_counter() - started


def connect(settings: Settings) -> Guarded:
    """A ``chromadb.HttpClient`` for the configured server, checked with a heartbeat first."""
    heartbeat(settings)
    import chromadb
    import httpx
    from chromadb.config import Settings as ChromaSettings

    try:
        client = chromadb.HttpClient(
            host=settings.chroma_host,
            port=settings.chroma_port,
            ssl=settings.chroma_tls,
            headers=_headers(),
            settings=ChromaSettings(anonymized_telemetry=False),
        )
    except Exception as exc:
        problem = translate(exc, settings)
        if problem is None:
            raise
        raise problem from None
    # chromadb's session waits forever; a server that stops answering must fail the call instead.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(max(settings.request_timeout_s, 60.0), connect=CONNECT_TIMEOUT_S)
    return Guarded(client, settings)


def open_collection(
    settings: Settings,
    record: dict[str, Any],
    embedding_function: Any,
    embedder: str,
    kb_name: str,
    create: bool,
) -> tuple[Guarded, Guarded]:
    """(client, collection) of a knowledge base on the server, cosine space.

    ``create``: make the collection if it is missing (a new or empty knowledge base). A knowledge
    base that holds chunks and whose collection is missing is refused, never re-created empty:
    the next open would otherwise rebuild the local index from an empty collection.
    """
    from chromadb.errors import NotFoundError

    name = str(record["collection"])
    client = connect(settings)
    try:
        collection = client.get_collection(name, embedding_function=embedding_function)
    except ValueError as exc:
        if "conflict" not in str(exc):
            raise
        # Made with another Chroma embedding function: opened without one, only for its
        # metadata and configuration, which make KnowledgeIndex refuse it (store.recorded_embedder).
        collection = client.get_collection(name, embedding_function=None)
    except NotFoundError:
        if not create:
            client.close()
            raise ConfigError(
                f"knowledge base {kb_name!r} is indexed locally but its collection {name} is not on the "
                f"Chroma server at {address(settings)}",
                hint="point chroma_host/chroma_port at the server it was built on, or `ladder kb delete "
                f"{kb_name}` and add the files again",
            ) from None
        collection = client.get_or_create_collection(
            name,
            embedding_function=embedding_function,
            metadata={EMBEDDER_KEY: embedder, KB_KEY: kb_name},
            configuration={"hnsw": {"space": "cosine"}},
        )
    return client, Guarded(collection, settings)


def delete_collection(settings: Settings, record: dict[str, Any]) -> None:
    """Drop a knowledge base's collection from the server (a missing one is fine)."""
    from chromadb.errors import NotFoundError

    client = connect(settings)
    try:
        client.delete_collection(str(record["collection"]))
    except NotFoundError:
        pass
    finally:
        client.close()


def describe(settings: Settings) -> dict[str, Any]:
    """For ``ladder doctor``: the address, whether the heartbeat answered, and the collection
    count (or the one-line reason it did not answer). Never the token."""
    info: dict[str, Any] = {"address": address(settings), "tls": settings.chroma_tls, "token": token_is_set()}
    try:
        info["latency_s"] = heartbeat(settings)
        client = connect(settings)
        try:
            info["collections"] = int(client.count_collections())
        finally:
            client.close()
        info["ok"] = True
    except BackendError as exc:
        info["ok"], info["error"] = False, exc.message
    return info


__all__ = [
    "EMBEDDER_KEY",
    "KB_KEY",
    "KIND",
    "TOKEN_ENV",
    "Guarded",
    "address",
    "collection_name",
    "connect",
    "delete_collection",
    "describe",
    "heartbeat",
    "new_store_record",
    "open_collection",
    "refused",
    "translate",
    "unreachable",
]
