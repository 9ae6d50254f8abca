"""Knowledge bases on a real Chroma server (``kb_store: chroma-server``).

A module-scoped fixture starts ``chroma run`` (the Rust server chromadb ships) on a free
127.0.0.1 port. The core knowledge-base cases of ``test_kb_store.py`` run against it unchanged,
the embedded and server stores are shown to return the same hits, and the failures (server
down, token refused, a collection of another embedder, a collection missing) are one-line
errors that leave the local files as they were.

The Rust server in chromadb 1.5.9 has no authentication (``CHROMA_SERVER_AUTHN_*`` is ignored:
anonymous requests are answered), so the token is checked against a small HTTP stub that
refuses a wrong one, the way Chroma's token auth or a reverse proxy in front of it would.
"""

from __future__ import annotations

import http.server
import inspect
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assistant.errors import BackendError, ConfigError
from assistant.knowledge import EmbeddingModelMismatch, KnowledgeBase
from assistant.settings import Settings, load_settings, replace
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.knowledge import test_kb_store as core

ROOT = Path(__file__).resolve().parents[2]
CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Chroma server on 127.0.0.1 for this module; killed at the end."""
    import httpx

    if not CHROMA.exists():
        pytest.skip(f"the `chroma` CLI of chromadb is not installed ({CHROMA} is missing)")
    root = tmp_path_factory.mktemp("chroma_server")
    port = free_port()
    log = (root / "chroma.log").open("wb")
    command = [str(CHROMA), "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("chroma run did not answer: " + (root / "chroma.log").read_text(errors="replace"))
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def settings(isolated_home: Path, chroma_port: int) -> Settings:
    """Overrides conftest's: here knowledge bases (the ``kb`` fixture's too) live on the server."""
    return load_settings(
        {"chunk_size": 200, "chunk_overlap": 40, "kb_store": "chroma-server", "chroma_port": chroma_port}
    )


def chroma_client(port: int) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.HttpClient(
        host="127.0.0.1", port=port, settings=ChromaSettings(anonymized_telemetry=False)
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a knowledge base's folder (except the lock): what a failure must not change."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        if p.name != ".lock"
    }


# ---- the knowledge-base tests' core cases, on the server ---------------------------------------
CORE_CASES = [
    core.test_create_open_list_and_delete,
    core.test_every_format_is_ingested_and_found,
    core.test_readd_is_a_no_op_a_changed_file_replaces_and_a_source_can_be_removed,
    core.test_same_content_under_another_path_is_skipped_and_chunking_change_rechunks,
    core.test_removing_a_folder_removes_every_source_under_it,
    core.test_bm25_index_persists_across_reopen_and_other_objects_see_changes,
    core.test_a_lost_index_is_rebuilt_from_chroma_on_open,
    core.test_hybrid_retrieval_finds_the_right_document,
]


@pytest.mark.parametrize("case", CORE_CASES, ids=lambda case: case.__name__.removeprefix("test_"))
def test_core_knowledge_base_cases_on_the_server(
    case: Callable[..., None], settings: Settings, chroma_port: int, request: pytest.FixtureRequest
) -> None:
    """Each case of test_kb_store.py as it is, with this module's ``settings`` and ``kb``."""
    case(**{name: request.getfixturevalue(name) for name in inspect.signature(case).parameters})
    # Everything the case built lives on the server, none of it in a local Chroma folder.
    assert not list(settings.kb_dir.glob("*/chroma"))
    for name in KnowledgeBase.list_all(settings):
        store = json.loads((settings.kb_dir / name / "kb.json").read_text())["store"]
        with KnowledgeBase.open(name, settings) as opened:
            assert opened.collection.count() == len(opened.bm25.ids)
        assert store["collection"] in [c.name for c in chroma_client(chroma_port).list_collections()]


def test_collections_are_named_per_home_and_record_the_embedder(
    settings: Settings, chroma_port: int, tmp_path: Path
) -> None:
    mine = KnowledgeBase.create("docs", settings)
    theirs = KnowledgeBase.create("docs", replace(settings, home=tmp_path / "other_home"))
    name = mine.meta["store"]["collection"]
    assert mine.meta["store"]["kind"] == "chroma-server"
    assert name.startswith("ladder-docs-") and name != theirs.meta["store"]["collection"]
    stored = chroma_client(chroma_port).get_collection(name)
    assert stored.metadata == {"ladder_embedding_model": "packaged:all-MiniLM-L6-v2", "ladder_kb": "docs"}
    assert mine.info()["store"] == f"chroma-server 127.0.0.1:{chroma_port}/{name}"
    Path("a.txt").write_text("Otters hold hands while they sleep.")
    assert mine.add([Path("a.txt")]).ok and theirs.info()["chunks"] == 0
    mine.close()
    KnowledgeBase.delete("docs", settings)
    names = [c.name for c in chroma_client(chroma_port).list_collections()]
    assert name not in names and theirs.meta["store"]["collection"] in names
    theirs.close()


QUERIES = [
    "带薪年假有几天？",
    "公司总部在哪里",
    "How long do I have to file travel expenses?",
    "Which client connects to the VPN?",
    "printer badge floor",
    "How often must passwords be rotated?",
    "vegetarian food",
]


def test_embedded_and_server_stores_return_the_same_hits(
    settings: Settings, pdf_bytes: Callable[[list[str]], bytes], docx_file: Callable[..., Path]
) -> None:
    folder = core.write_corpus(Path("corpus"), pdf_bytes, docx_file)
    embedded = KnowledgeBase.create("local", replace(settings, kb_store="embedded"))
    served = KnowledgeBase.create("served", settings)
    assert embedded.add([folder]).ok and served.add([folder]).ok
    assert (embedded.folder / "chroma").is_dir() and not (served.folder / "chroma").exists()
    compared = 0
    for query in QUERIES:
        for mode in ("hybrid", "dense", "bm25"):
            local_hits = embedded.search(query, k=5, mode=mode)
            server_hits = served.search(query, k=5, mode=mode)
            assert local_hits, (query, mode)
            assert [h.chunk_id for h in server_hits] == [h.chunk_id for h in local_hits], (query, mode)
            for here, there in zip(local_hits, server_hits, strict=True):
                assert there.score == pytest.approx(here.score, abs=1e-6)
                assert there.fused_score == pytest.approx(here.fused_score, abs=1e-6)
                assert there.dense_score == pytest.approx(here.dense_score, abs=1e-6)
            compared += len(local_hits)
    assert compared >= len(QUERIES) * 3
    embedded.close()
    served.close()


# ---- failures: one line, exit 5 or 2, local files untouched --------------------------------
def test_an_unreachable_server_exits_5_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    dead = free_port()
    monkeypatch.setenv("LADDER_KB_STORE", "chroma-server")
    monkeypatch.setenv("LADDER_CHROMA_PORT", str(dead))
    code, _, err = run(["kb", "create", "handbook"], capsys)
    assert code == 5, err
    assert f"Chroma server at 127.0.0.1:{dead}" in err and "unreachable" in err
    assert f"chroma run --path DIR --port {dead}" in err and "Traceback" not in err
    assert not (settings.kb_dir / "handbook").exists()

    # A knowledge base built on the live server, then opened while the server is away.
    kb = KnowledgeBase.create("handbook", settings)
    Path("a.txt").write_text("The staff canteen opens at half past eleven.")
    assert kb.add([Path("a.txt")]).ok
    kb.close()
    before = snapshot(kb.folder)
    Path("b.txt").write_text("Parking permits are renewed every January.")
    for command in (["kb", "add", "handbook", "b.txt"], ["kb", "search", "handbook", "canteen"]):
        code, _, err = run(command, capsys)
        assert code == 5 and "unreachable" in err and "Traceback" not in err, (command, err)
    with pytest.raises(BackendError):
        KnowledgeBase.delete("handbook", replace(settings, chroma_port=dead))
    assert snapshot(kb.folder) == before
    monkeypatch.delenv("LADDER_CHROMA_PORT")
    monkeypatch.setenv("LADDER_CHROMA_PORT", str(settings.chroma_port))
    code, out, err = run(["kb", "search", "handbook", "canteen"], capsys)
    assert code == 0 and "half past eleven" in out, err


class _TokenStub(http.server.BaseHTTPRequestHandler):
    """Answers the heartbeat (unless ``guard_all``) and refuses every other request whose
    bearer token is not ``expected``; records the Authorization header of each request."""

    expected = "the-right-token"
    guard_all = False
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        open_path = self.path.endswith("/heartbeat") and not self.guard_all
        if not open_path and self.headers.get("Authorization") != f"Bearer {self.expected}":
            body = json.dumps({"error": "AuthorizationError", "message": "Unauthorized"}).encode()
            self.send_response(401)
        else:
            body = json.dumps({"nanosecond heartbeat": 1}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("guard_all", [False, True], ids=["chroma-token-auth", "proxy-guards-everything"])
def test_a_wrong_token_is_refused_with_exit_5_and_never_shown(
    guard_all: bool,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    isolated_home: Path,
) -> None:
    seen: list[tuple[str, str | None]] = []
    handler = type("Stub", (_TokenStub,), {"guard_all": guard_all, "seen": seen})
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    secret = "wrong-token-7f3a9c"
    monkeypatch.setenv("LADDER_KB_STORE", "chroma-server")
    monkeypatch.setenv("LADDER_CHROMA_PORT", str(stub.server_address[1]))
    monkeypatch.setenv("LADDER_CHROMA_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    try:
        code, out, err = run(["kb", "create", "handbook"], capsys)
    finally:
        stub.shutdown()
        stub.server_close()
    assert code == 5, err
    assert "refused the request (HTTP 401; a token was sent)" in err and "LADDER_CHROMA_TOKEN" in err
    assert "Traceback" not in err
    # The token went to the server as a bearer header, and nowhere else.
    assert seen and all(header == f"Bearer {secret}" for _path, header in seen)
    assert secret not in out + err + caplog.text
    assert not (isolated_home / "kb" / "handbook").exists()


def test_a_collection_of_another_embedder_or_a_missing_one_is_refused(
    settings: Settings, kb: KnowledgeBase, chroma_port: int
) -> None:
    Path("a.txt").write_text("Zebras have black and white stripes.")
    assert kb.add([Path("a.txt")]).ok
    kb.close()
    before = snapshot(kb.folder)
    name = kb.meta["store"]["collection"]
    client = chroma_client(chroma_port)
    # Another tool (or another Ladder home, misconfigured) put a collection of another model there.
    client.delete_collection(name)
    client.create_collection(name, metadata={"ladder_embedding_model": "pack:multilingual-e5-small"})
    with pytest.raises(EmbeddingModelMismatch) as mismatch:
        KnowledgeBase.open("docs", settings)
    assert mismatch.value.exit_code == 2
    assert "holds vectors of embedding model pack:multilingual-e5-small" in mismatch.value.message
    assert "never mixed" in (mismatch.value.hint or "")
    # One made by plain chromadb, with its default embedding function and no Ladder metadata.
    client.delete_collection(name)
    client.create_collection(name)
    with pytest.raises(EmbeddingModelMismatch, match="holds vectors of embedding model chroma:default"):
        KnowledgeBase.open("docs", settings)
    # A server without the collection (another server, or its data lost): refused, not emptied.
    client.delete_collection(name)
    with pytest.raises(ConfigError, match="is not on the Chroma server") as missing:
        KnowledgeBase.open("docs", settings)
    assert missing.value.exit_code == 2 and "chroma_host/chroma_port" in (missing.value.hint or "")
    assert snapshot(kb.folder) == before
    assert name not in [c.name for c in client.list_collections()]


def test_two_writers_at_once_lose_nothing(settings: Settings, tmp_path: Path) -> None:
    """Two KnowledgeBase objects (each with its own handle on the .lock, as two processes have)
    add files at the same moment: the lock serializes them and each picks up the other's BM25
    generation before it writes, so every file is in Chroma, the BM25 index and the manifest."""
    KnowledgeBase.create("shared", settings).close()
    files: dict[str, list[Path]] = {}
    for writer in ("a", "b"):
        for n in range(3):
            path = tmp_path / f"{writer}{n}.txt"
            path.write_text(f"Writer {writer} document {n}: the codeword is WORD{writer}{n}. " * 4)
            files.setdefault(writer, []).append(path)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(paths: list[Path]) -> None:
        try:
            kb = KnowledgeBase.open("shared", settings)
            start.wait()
            for path in paths:
                assert kb.add([path]).ok
            kb.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(paths,)) for paths in files.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    kb = KnowledgeBase.open("shared", settings)
    assert len(kb.sources()) == 6
    assert kb.collection.count() == len(kb.bm25.ids) == sum(s.chunks for s in kb.sources())
    for writer, n in (("a", 0), ("b", 2)):
        assert f"WORD{writer}{n}" in core.top(kb, f"word{writer}{n}", mode="bm25").text
    kb.close()


def test_a_reader_opening_during_a_write_waits_instead_of_rebuilding(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A knowledge base opened while another writer has its chunks on the server but not yet
    its BM25 index looks inconsistent; after waiting for the lock it must look again, not
    rebuild the index from the server (a full rebuild, and a race with the next writer)."""
    from assistant.knowledge import writer
    from assistant.knowledge.kb import KnowledgeBase as Base

    kb = KnowledgeBase.create("docs", settings)
    Path("a.txt").write_text("Herons stand still in shallow water for a long time.")
    checked = threading.Event()
    original = Base._consistent

    def consistent(self: KnowledgeBase) -> bool:
        answer = original(self)
        if not answer:
            checked.set()
        return answer

    rebuilds: list[str] = []
    real_resync = writer.resync
    monkeypatch.setattr(Base, "_consistent", consistent)

    def resync(k: KnowledgeBase) -> None:
        rebuilds.append(k.name)
        real_resync(k)

    monkeypatch.setattr(writer, "resync", resync)
    real_save = kb.save_index

    def save_after_the_reader_looked(add: dict[str, list[str]], remove: Any) -> None:
        assert checked.wait(timeout=60)  # the reader saw Chroma ahead of the index
        real_save(add, remove)

    monkeypatch.setattr(kb, "save_index", save_after_the_reader_looked)
    opened: list[KnowledgeBase] = []
    reader = threading.Thread(target=lambda: opened.append(KnowledgeBase.open("docs", settings)))

    original_write_file = writer.write_file

    def write_then_start_reader(*args: Any, **kwargs: Any) -> None:
        original_write_file(*args, **kwargs)
        reader.start()

    monkeypatch.setattr(writer, "write_file", write_then_start_reader)
    assert kb.add([Path("a.txt")]).ok
    reader.join(timeout=60)
    assert opened and len(opened[0].bm25.ids) == 1
    assert rebuilds == []
    opened[0].close()
    kb.close()


GUARDED = """
import sys
import tests.socket_guard as guard
guard.install()
from assistant.knowledge import KnowledgeBase
from assistant.settings import load_settings
settings = load_settings({{"home": {home!r}, "kb_store": "chroma-server", "chroma_port": {port}}})
kb = KnowledgeBase.open("docs", settings)
hits = kb.search("kingfisher", k=1, mode="bm25")
print("HIT", hits[0].text if hits else None, "REMOVED", kb.remove_source({source!r}))
print("HEAVY", [m for m in ("torch", "sentence_transformers") if m in sys.modules])
"""


def test_the_server_client_opens_no_outside_socket(settings: Settings, chroma_port: int) -> None:
    """The HttpClient path (heartbeat, collection calls, chromadb's telemetry switched off) under
    the socket guard, with no privacy environment set: loopback only."""
    kb = KnowledgeBase.create("docs", settings)
    Path("a.txt").write_text("A kingfisher dives for fish from a low branch.")
    assert kb.add([Path("a.txt")]).ok
    kb.close()
    code = GUARDED.format(home=str(settings.home), port=chroma_port, source=str(Path("a.txt").resolve()))
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "ANONYMIZED_TELEMETRY"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert "HIT A kingfisher" in result.stdout and "REMOVED 1" in result.stdout, result.stdout + result.stderr
    assert "SOCKET-GUARD" not in result.stderr, result.stderr
    assert KnowledgeBase.open("docs", settings).sources() == []


# ---- ladder doctor ----------------------------------------------------------------------------
def test_doctor_reports_the_store_and_whether_it_answers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    KnowledgeBase.create("docs", settings).close()
    monkeypatch.setenv("LADDER_KB_STORE", "chroma-server")
    monkeypatch.setenv("LADDER_CHROMA_PORT", str(settings.chroma_port))
    monkeypatch.setenv("LADDER_CHROMA_TOKEN", "doctor-secret-41b2")
    _, out, err = run(["doctor"], capsys)
    line = next(row for row in out.splitlines() if "kb store" in row)
    assert f"chroma-server 127.0.0.1:{settings.chroma_port}" in line and "heartbeat ok" in line
    assert "token set" in line and "collections" in line
    assert "knowledge bases" in out and "1 on chroma-server" in out
    assert "doctor-secret-41b2" not in out + err

    monkeypatch.setenv("LADDER_CHROMA_PORT", str(free_port()))
    _, out, _ = run(["doctor"], capsys)
    line = next(row for row in out.splitlines() if "kb store" in row)
    assert "heartbeat failed" in line and "unreachable" in out

    monkeypatch.setenv("LADDER_KB_STORE", "embedded")
    _, out, _ = run(["doctor"], capsys)
    line = next(row for row in out.splitlines() if "kb store" in row)
    assert "embedded" in line and "heartbeat" not in line
