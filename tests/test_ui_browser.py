"""The app in a real headless Chromium: `streamlit run` on 127.0.0.1, driven with Playwright."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, make_settings
from playwright.sync_api import Browser, BrowserContext, Locator, Page, sync_playwright

from rag import RagService

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUSSIA = "What does Russia want?"
TULIP_Q = "How many tulip bulbs did the Lisse growers harvest?"
MARKUP_ARTICLE = """\
Tulip growers in Lisse [click here](http://evil.example/phish) report record bulb exports this spring.
<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">
The Lisse tulip harvest reached 3 billion bulbs this year, growers said on Monday, and exports to Japan doubled.
"""
SCREENSHOT_ENV = "UI_SCREENSHOT"  # `make screenshot` sets it to docs/screenshot.png
WAIT_MS = 60_000
DONE = re.compile(r"^(Answered in|No answer in the articles|Could not answer)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run ui/app.py` over a temp data dir holding the seed corpus and a markup-laden article."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} - `make browser-deps` installs it (apt-get install chromium)")
    root = tmp_path_factory.mktemp("ui-browser")
    extra = root / "extra"
    extra.mkdir()
    (extra / "tulips.txt").write_text(MARKUP_ARTICLE, encoding="utf-8")
    builder = RagService(make_settings(root / "data"))
    builder.ingest([CORPUS, extra])
    builder.close()  # the app process must own the index
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env.update(RAG_DATA_DIR=str(root / "data"), RAG_CORPUS_DIR=str(CORPUS), ANONYMIZED_TELEMETRY="False")
    log = root / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(REPO / "ui" / "app.py"),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--browser.gatherUsageStats",
                "false",
                "--client.toolbarMode",
                "minimal",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _open(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    page.get_by_test_id("stChatInputTextArea").wait_for(timeout=WAIT_MS)
    return page


def _ask(page: Page, question: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")


def _answer(page: Page, n_user: int) -> Locator:
    """The n-th assistant message, once the answer is complete (its status block says so)."""
    page.get_by_test_id("stChatMessageAvatarUser").nth(n_user - 1).wait_for(timeout=WAIT_MS)
    msg = page.get_by_test_id("stChatMessage").nth(2 * n_user - 1)
    msg.get_by_text(DONE).first.wait_for(timeout=WAIT_MS)
    return msg


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_streamed_answer_with_citation_and_highlighted_quote(browser: Browser, server: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    page = _open(context, server)
    _ask(page, RUSSIA)
    msg = _answer(page, 1)
    text = msg.inner_text()
    assert re.search(r"\[1\]", text), text
    page.wait_for_load_state("networkidle")
    outside = [u for u in requested if not u.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))]
    assert requested and not outside, outside  # offline: nothing leaves the machine (fonts, icons, telemetry)
    assert "Answered in" in text
    msg.get_by_text(re.compile(r"^Sources \(\d+\)$")).click()
    mark = msg.locator("mark.rag-quote").first
    mark.wait_for(state="visible", timeout=WAIT_MS)
    quote = _squash(mark.inner_text())
    article = _squash(next(CORPUS.glob("*.txt")).read_text(encoding="utf-8"))
    assert len(quote) > 30 and quote in article, quote
    assert mark.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    page.get_by_test_id("stChatMessage").first.scroll_into_view_if_needed()
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    if target := os.environ.get(SCREENSHOT_ENV):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    context.close()


def test_article_markup_neither_runs_nor_links(browser: Browser, server: str) -> None:
    context = browser.new_context()
    page = _open(context, server)
    _ask(page, TULIP_Q)
    msg = _answer(page, 1)
    assert "3 billion bulbs" in msg.inner_text()
    msg.get_by_text(re.compile(r"^Sources \(\d+\)$")).click()
    msg.get_by_test_id("stCheckbox").filter(has_text="Show the whole article").first.click()
    whole = page.locator(".rag-article").first
    try:
        whole.wait_for(state="visible", timeout=WAIT_MS)
    except Exception:  # say what the page shows instead (an error box, a warning) rather than only "timeout"
        boxes = page.get_by_test_id("stAlert")
        alerts = [boxes.nth(i).inner_text() for i in range(boxes.count())]
        pytest.fail(f"the whole article did not open; alerts: {alerts}; message: {msg.inner_text()[:1500]}")
    assert "<script>window.__xss = 1</script>" in whole.inner_text()
    links = page.locator('a[href*="evil.example"]')
    assert links.count() == 0, [links.nth(i).evaluate("e => e.parentElement.outerHTML") for i in range(links.count())]
    assert page.locator(".rag-article script, .rag-article img").count() == 0
    assert page.evaluate("() => window.__xss === undefined")
    context.close()


def test_two_browser_sessions_keep_separate_conversations(browser: Browser, server: str) -> None:
    ctx_a = browser.new_context()
    ctx_b = browser.new_context()
    page_a, page_b = _open(ctx_a, server), _open(ctx_b, server)
    _ask(page_a, RUSSIA)
    _ask(page_b, TULIP_Q)  # both sessions are answering at once
    msg_a, msg_b = _answer(page_a, 1), _answer(page_b, 1)
    assert "[1]" in msg_a.inner_text() and "3 billion" in msg_b.inner_text()
    _ask(page_a, "And what about sanctions?")
    _answer(page_a, 2)
    main_a = page_a.get_by_test_id("stMainBlockContainer").inner_text()
    main_b = page_b.get_by_test_id("stMainBlockContainer").inner_text()
    assert RUSSIA in main_a and "tulip" not in main_a.lower()
    assert TULIP_Q in main_b and RUSSIA not in main_b and "sanctions?" not in main_b
    assert page_a.get_by_test_id("stChatMessageAvatarUser").count() == 2
    assert page_b.get_by_test_id("stChatMessageAvatarUser").count() == 1
    ctx_a.close()
    ctx_b.close()
