"""Keys and roles, binding rules, `rag serve` as a process, and `rag serve --ui` keeping one index owner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, REPO, make_settings, stop_process
from test_api import READ_KEY, RUSSIA, close, free_port

from rag import ConfigError, RagService
from rag.api import KeyRing, build_server, check_bind, key_digest, start_in_thread, stop

pytestmark = pytest.mark.timeout(180)


# -- key parsing, binding -----------------------------------------------------------------------------------
def test_key_ring_from_keys_and_file(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text(
        f"# ops\n\n{key_digest('file-admin-key-0123456789')}:admin\n{key_digest('file-read-key-0123456789')}\n"
    )
    ring = KeyRing.from_settings(
        make_settings(
            tmp_path,
            api_keys="plain-read-key-0123, admin-key-0123456789:admin,has:colon-key-0123456789",
            api_key_file=f,
        )
    )
    assert len(ring) == 5
    assert ring.role_of("plain-read-key-0123") == "read"
    assert ring.role_of("admin-key-0123456789") == "admin"
    assert ring.role_of("admin-key-0123456789:admin") is None
    assert ring.role_of("has:colon-key-0123456789") == "read"
    assert ring.role_of("file-admin-key-0123456789") == "admin"
    assert ring.role_of("file-read-key-0123456789") == "read"
    assert ring.role_of("") is None and ring.role_of("plain-read-key-012") is None


@pytest.mark.parametrize(
    ("keys", "file_text", "needle"),
    [
        ("short", None, "shorter than 16"),
        (None, "not-a-digest:admin\n", "line 1"),
        (None, f"{'a' * 64}:root\n", "line 1"),
        (None, "# nothing\n", "holds no keys"),
    ],
)
def test_bad_key_settings_are_config_errors_that_do_not_echo_keys(
    tmp_path: Path, keys: str | None, file_text: str | None, needle: str
) -> None:
    f = None
    if file_text is not None:
        f = tmp_path / "keys"
        f.write_text(file_text)
    with pytest.raises(ConfigError) as exc:
        KeyRing.from_settings(make_settings(tmp_path, api_keys=keys, api_key_file=f))
    assert needle in exc.value.user_message
    assert "not-a-digest" not in exc.value.user_message and "short:" not in exc.value.user_message


def test_no_key_refuses_to_bind_off_loopback() -> None:
    empty = KeyRing([])
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, empty)
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.org"):
        with pytest.raises(ConfigError, match="without an API key"):
            check_bind(host, empty)
    check_bind("0.0.0.0", KeyRing([(b"x" * 32, "read")]))


def _rag(*args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", *args],
        env=env,
        cwd=REPO,
        text=True,
        stderr=subprocess.PIPE,
        **kw,  # type: ignore[call-overload]
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env.update(ANONYMIZED_TELEMETRY="False", PYTHONPATH=str(REPO), **extra)
    return env


def test_rag_serve_off_loopback_without_key_exits_with_the_reason(tmp_path: Path) -> None:
    proc = _rag("--data-dir", str(tmp_path / "d"), "serve", "--host", "0.0.0.0", "--port", str(free_port()), env=_env())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: Refusing to listen on 0.0.0.0 without an API key")


def _wait(url: str, proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not up within {timeout:.0f} s")


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("serve") / "data"
    svc = RagService(make_settings(data))
    svc.ingest([CORPUS])
    close(svc)
    return data


def test_rag_serve_process_answers_with_keys(seed_dir: Path) -> None:
    port = free_port()
    proc = _rag("serve", "--port", str(port), env=_env(RAG_DATA_DIR=str(seed_dir), RAG_API_KEYS=f"{READ_KEY}"))
    try:
        _wait(f"http://127.0.0.1:{port}/readyz", proc)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/ask",
            json={"question": RUSSIA},
            headers={"Authorization": f"Bearer {READ_KEY}"},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["citations"], r.text
        assert httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": RUSSIA}).status_code == 401
    finally:
        stop_process(proc)
    assert READ_KEY not in (proc.stderr.read() if proc.stderr else "")


# -- `rag serve --ui`: the API and the Streamlit app in one process, one owner of the index -------------------
def test_serve_ui_shares_the_cached_service_with_the_app(seed_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the launcher's service is the one the app's pages get from st.cache_resource."""
    from streamlit.testing.v1 import AppTest

    from ui import common
    from ui.serve import hosted_service

    monkeypatch.setenv("RAG_DATA_DIR", str(seed_dir))
    monkeypatch.setenv("RAG_CORPUS_DIR", str(CORPUS))
    common._build_service.clear()
    svc = hosted_service()
    server = build_server(svc, "127.0.0.1", free_port(), log_level="warning")
    thread = start_in_thread(server)
    try:
        at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=90)
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert common.get_service() is svc
        assert [m.value for m in at.sidebar.metric][:1] == ["1"]
        url = f"http://{server.config.host}:{server.config.port}"
        assert httpx.post(f"{url}/v1/ask", json={"question": RUSSIA}, timeout=60).json()["citations"]
    finally:
        stop(server, thread)
        common._build_service.clear()
        close(svc)


@pytest.fixture(scope="module")
def serve_ui(seed_dir: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`rag serve --ui` on the seed corpus: (API url, app url, its environment)."""
    port, ui_port = free_port(), free_port()
    env = _env(RAG_DATA_DIR=str(seed_dir))
    proc = _rag("serve", "--ui", "--port", str(port), "--ui-port", str(ui_port), env=env)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz", proc)
        _wait(f"http://127.0.0.1:{ui_port}/_stcore/health", proc)
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", env
    finally:
        stop_process(proc)


def test_rag_serve_ui_process_serves_both_and_owns_the_index(serve_ui: tuple[str, str, dict[str, str]]) -> None:
    api_url, _, env = serve_ui
    r = httpx.post(f"{api_url}/v1/ask", json={"question": RUSSIA}, timeout=60)
    assert r.status_code == 200 and r.json()["citations"]
    # one owner: a second process on the same data dir is turned away, naming the holder
    other = _rag("ask", RUSSIA, env=env)
    _, err = other.communicate(timeout=120)
    assert other.returncode == 1 and err.strip().startswith("error:") and "process" in err, err


@pytest.mark.browser
def test_rag_serve_ui_app_answers_in_a_browser_beside_the_api(serve_ui: tuple[str, str, dict[str, str]]) -> None:
    """The app's pages use the process's one service: an answer in Chromium, then one over the API."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Chromium not found at /usr/bin/chromium - `make browser-deps` installs it")
    from playwright.sync_api import sync_playwright
    from test_ui_browser import DONE, FLAGS, WAIT_MS

    api_url, ui_url, _ = serve_ui
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(ui_url)
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for(timeout=WAIT_MS)
            box.fill(RUSSIA)
            box.press("Enter")
            msg = page.get_by_test_id("stChatMessage").nth(1)
            msg.get_by_text(DONE).first.wait_for(timeout=WAIT_MS)
            text = msg.inner_text()
            sidebar = page.get_by_test_id("stSidebar").inner_text()
        finally:
            browser.close()
    assert "[1]" in text and "Answered in" in text, text
    assert "another process" not in sidebar and "holds" not in sidebar.lower(), sidebar
    r = httpx.post(f"{api_url}/v1/ask", json={"question": RUSSIA}, timeout=60)
    assert r.status_code == 200 and r.json()["citations"]
