"""Operations on a real server: /metrics, one log line per request, rate limit, concurrency cap, timeout, CORS."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CORPUS, make_settings
from prometheus_client.parser import text_string_to_metric_families
from test_api import READ_KEY, RUSSIA, UNANSWERABLE, close, free_port

from rag import RagService
from rag.api import build_server, create_app, start_in_thread, stop

pytestmark = pytest.mark.timeout(180)

OTHER_KEY = "other-key-0123456789abcdef-DO-NOT-LEAK"


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ops") / "data"
    svc = RagService(make_settings(data))
    svc.ingest([CORPUS])
    close(svc)
    return data


@contextmanager
def serving(data: Path, **settings: Any) -> Iterator[tuple[str, RagService]]:
    svc = RagService(make_settings(data, **settings))
    port = free_port()
    server = build_server(svc, "127.0.0.1", port, log_level="warning")
    thread = start_in_thread(server)
    try:
        yield f"http://127.0.0.1:{port}", svc
    finally:
        stop(server, thread)
        close(svc)


def client(url: str, key: str | None = READ_KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=60)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


class Gate:
    """Holds RagService.ask until released, counting who entered (no timing: the test waits for events)."""

    def __init__(self, svc: RagService) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.original = svc.ask
        svc.ask = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kw: Any) -> Any:
        self.entered.release()
        assert self.release.wait(120), "never released"
        return self.original(*args, **kw)


# -- metrics ---------------------------------------------------------------------------------------------------
def test_metrics_count_requests_stages_answers_refusals_and_index_size(seed: Path) -> None:
    with serving(seed, api_keys=READ_KEY) as (url, svc), client(url) as c:
        assert c.post("/v1/ask", json={"question": RUSSIA}).json()["refused"] is False
        assert c.post("/v1/ask", json={"question": UNANSWERABLE}).json()["refused"] is True
        chat = {"model": "rag", "messages": [{"role": "user", "content": RUSSIA}]}
        assert c.post("/v1/chat/completions", json=chat).status_code == 200
        streamed = c.post("/v1/ask", json={"question": RUSSIA, "stream": True})
        assert "event: answer" in streamed.text
        aid = svc.list_articles()[0]["article_id"]
        assert c.get(f"/v1/articles/{aid}").status_code == 200
        assert c.get("/v1/articles/nothing-here").status_code == 404
        assert c.get("/v1/no-such-route").status_code == 404
        with client(url, key=None) as anon:
            assert anon.post("/v1/ask", json={"question": RUSSIA}).status_code == 401
            r = anon.get("/metrics")  # no key needed
        chunks = svc.stats()["chunks"]
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    req = "rag_http_requests_total"
    assert value(m, req, route="/v1/ask", method="POST", status="200") == 3
    assert value(m, req, route="/v1/ask", method="POST", status="401") == 1
    assert value(m, req, route="/v1/chat/completions", method="POST", status="200") == 1
    assert value(m, req, route="/v1/articles/{article_id}", method="GET", status="200") == 1
    assert value(m, req, route="/v1/articles/{article_id}", method="GET", status="404") == 1
    assert value(m, req, route="unmatched", method="GET", status="404") == 1  # no label per unknown path
    assert value(m, "rag_http_request_duration_seconds_count", route="/v1/ask") == 4
    for stage in ("retrieve", "gate", "answer", "total"):
        assert value(m, "rag_stage_duration_seconds_count", stage=stage) == 4, stage
    assert value(m, "rag_answers_total", mode="extractive") == 4
    assert value(m, "rag_refusals_total", mode="extractive") == 1
    assert value(m, "rag_index_articles") == 1 and value(m, "rag_index_chunks") == chunks > 0
    assert value(m, "rag_index_up") == 1


def test_each_app_has_its_own_registry(seed: Path) -> None:
    svc = RagService(make_settings(seed))
    try:
        first, second = create_app(svc, warm=False), create_app(svc, warm=False)  # no duplicate-metric error
        first.state.api.metrics.observe_request("/v1/ask", "POST", 200, 0.01)
        assert b'route="/v1/ask"' in first.state.api.metrics.render()
        assert b'route="/v1/ask"' not in second.state.api.metrics.render()
    finally:
        close(svc)


# -- logs ------------------------------------------------------------------------------------------------------
class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def access_lines() -> Iterator[list[str]]:
    log = logging.getLogger("rag.api.access")
    handler, level = Lines(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@pytest.mark.parametrize("debug", [False, True])
def test_one_json_log_line_per_request_without_key_or_question(seed: Path, debug: bool) -> None:
    question = "What does Russia want? (a SECRET-QUESTION marker)"
    with serving(seed, api_keys=READ_KEY, api_debug=debug) as (url, _), access_lines() as lines:
        with client(url) as c:
            assert c.post("/v1/ask", json={"question": question}).status_code == 200
            assert c.get("/v1/articles", params={"q": "russia"}).status_code == 200
        with client(url, key=READ_KEY + "x") as bad:
            assert bad.get("/v1/articles").status_code == 401
        with client(url, key=None) as anon:
            assert anon.get("/healthz").status_code == 200
        # a request's line is logged just after its response is sent: wait for the fourth (at most 10 s)
        deadline = time.monotonic() + 10
        while len(lines) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    records = [json.loads(line) for line in lines]
    assert [(r["method"], r["route"], r["status"]) for r in records] == [
        ("POST", "/v1/ask", 200),
        ("GET", "/v1/articles", 200),
        ("GET", "/v1/articles", 401),
        ("GET", "/healthz", 200),
    ]
    ask = records[0]
    assert ask["mode"] == "extractive" and ask["refused"] is False and ask["ms"] > 0
    assert ask["caller"].startswith("key:") and records[3]["caller"] == "ip:127.0.0.1"
    text = "\n".join(lines)
    assert "DO-NOT-LEAK" not in text  # never a key, not even with debug
    assert ("SECRET-QUESTION" in text) is debug


# -- fair use ----------------------------------------------------------------------------------------------------
def test_rate_limit_per_key_is_429_with_retry_after(seed: Path) -> None:
    keys = f"{READ_KEY},{OTHER_KEY}"
    with serving(seed, api_keys=keys, api_rate_per_minute=1, api_rate_burst=2) as (url, _):
        with client(url) as c:
            codes = [c.get("/v1/models").status_code for _ in range(3)]
            limited = c.get("/v1/models")
        assert codes == [200, 200, 429]
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        error = limited.json()["error"]
        assert error["type"] == "rate_limit_error" and "RAG_API_RATE_PER_MINUTE" in error["message"]
        with client(url, OTHER_KEY) as other:  # another key has its own bucket
            assert other.get("/v1/models").status_code == 200
        with client(url, key=None) as anon:  # health checks and scrapes are never limited
            assert all(anon.get(p).status_code == 200 for p in ("/healthz", "/readyz", "/metrics") for _ in range(3))
            m = samples(anon.get("/metrics").text)
    assert value(m, "rag_http_rejected_total", reason="rate_limited") == 2


def test_concurrency_cap_answers_503_at_once_instead_of_queueing(seed: Path) -> None:
    with serving(seed, api_max_concurrent=2) as (url, svc):
        gate = Gate(svc)
        pool = ThreadPoolExecutor(2)
        try:
            with client(url) as c:
                held = [pool.submit(c.post, "/v1/ask", json={"question": RUSSIA}) for _ in range(2)]
                for _ in range(2):
                    assert gate.entered.acquire(timeout=60)
                busy = c.post("/v1/ask", json={"question": RUSSIA})
                assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
                assert busy.json()["error"]["type"] == "service_unavailable"
                assert "RAG_API_MAX_CONCURRENT" in busy.json()["error"]["message"]
                assert c.get("/readyz").status_code == 200  # the load balancer still sees a live instance
                gate.release.set()
                assert [f.result(60).status_code for f in held] == [200, 200]
                assert c.post("/v1/ask", json={"question": RUSSIA}).status_code == 200
        finally:
            gate.release.set()
            pool.shutdown()


def test_timeout_is_504_and_the_abandoned_work_keeps_its_slot(seed: Path) -> None:
    with serving(seed, api_timeout_s=0.5, api_max_concurrent=1) as (url, svc):
        gate = Gate(svc)
        try:
            with client(url) as c:
                r = c.post("/v1/ask", json={"question": RUSSIA})  # held past the timeout
                assert r.status_code == 504, r.text
                error = r.json()["error"]
                assert error["type"] == "timeout_error" and "RAG_API_TIMEOUT_S" in error["message"]
                # the answer is still being computed: the slot stays taken, so no queue builds up behind it
                assert c.post("/v1/ask", json={"question": RUSSIA}).status_code == 503
                gate.release.set()
                svc.ask = gate.original  # type: ignore[method-assign]
                for _ in range(600):  # the abandoned answer ends, then its slot is free again
                    r = c.post("/v1/ask", json={"question": RUSSIA})
                    if r.status_code != 503:
                        break
                    gate.entered.acquire(timeout=0.1)  # a short pause between attempts
                assert r.status_code == 200, r.text
        finally:
            gate.release.set()


def test_cors_is_off_unless_origins_are_set(seed: Path) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with serving(seed) as (url, _), client(url, key=None) as c:
        assert "access-control-allow-origin" not in c.options("/v1/ask", headers=preflight).headers
        assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://app.example"}).headers
    with serving(seed, api_cors_origins="https://app.example, https://other.example/") as (url, _), \
            client(url, key=None) as c:
        ok = c.options("/v1/ask", headers=preflight)
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        got = c.get("/healthz", headers={"Origin": "https://other.example"})
        assert got.headers["access-control-allow-origin"] == "https://other.example"
        evil = c.options("/v1/ask", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
