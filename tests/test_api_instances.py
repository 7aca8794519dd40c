"""Two `rag serve` processes on one `chroma run` server: an upload through one is answered by the other."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CORPUS, REPO, make_settings, stop_process
from test_api import ADMIN_KEY, READ_KEY, close, free_port
from test_api_articles import KEEPERS, LIGHTHOUSE
from test_api_auth import _env
from test_store_modes import start_chroma

from rag import RagService

pytestmark = pytest.mark.timeout(300)

RECHECK_S = 5.0  # BM25Index.recheck_seconds: how long an instance may serve its cached BM25 revision
MARGIN_S = 60.0  # generous: a loaded machine; this is a bound on waiting, not a timing assertion


def _serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:  # the request log goes to a file: a full pipe would stall the server
        return subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"rag serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(url A, url B, A's data dir): two processes with their own data dirs on one Chroma collection."""
    root = tmp_path_factory.mktemp("instances")
    chroma, chroma_port = start_chroma(root / "chroma")
    collection = f"t-{uuid.uuid4().hex[:12]}"
    shared = {"chroma_host": "127.0.0.1", "chroma_port": chroma_port, "collection": collection}
    seed = RagService(make_settings(root / "seed", **shared))  # type: ignore[arg-type]
    seed.ingest([CORPUS])
    close(seed)
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = _env(
                RAG_DATA_DIR=str(root / name), RAG_CHROMA_HOST="127.0.0.1", RAG_CHROMA_PORT=str(chroma_port),
                RAG_COLLECTION=collection, RAG_API_KEYS=f"{READ_KEY},{ADMIN_KEY}:admin",
            )
            log = root / f"{name}.log"
            procs.append(_serve(port, env, log))
            urls.append(f"http://127.0.0.1:{port}")
            _wait_ready(urls[-1], procs[-1], log)
        yield urls[0], urls[1], root / "a"
    finally:
        for p in procs:
            stop_process(p)
        stop_process(chroma)  # type: ignore[arg-type]


def _client(url: str, key: str = READ_KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _cites(url: str, article_id: str) -> bool:
    with _client(url) as c:
        r = c.post("/v1/ask", json={"question": KEEPERS})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return any(cit["article_id"] == article_id for cit in answer["citations"])


def _within(bound_s: float, check: Any) -> float:
    """Poll check() until it holds; the seconds it took (the test fails past bound_s)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > bound_s:
            pytest.fail(f"not seen within {bound_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - t0


def test_an_upload_through_one_instance_is_answered_by_the_other(two: tuple[str, str, Path]) -> None:
    a, b, a_data = two
    with _client(a, ADMIN_KEY) as ca:
        r = ca.post("/v1/articles", files={"file": ("keepers.txt", LIGHTHOUSE.encode())})
    assert r.status_code == 200, r.text
    aid = r.json()["files"][0]["articles"][0]["article_id"]
    with _client(b) as cb:  # the registry is shared: B lists it at once
        assert cb.get(f"/v1/articles/{aid}").json()["text"] == LIGHTHOUSE
        assert aid in {x["article_id"] for x in cb.get("/v1/articles").json()["data"]}
    _within(RECHECK_S + MARGIN_S, lambda: _cites(b, aid))
    with httpx.Client(base_url=b) as anon:
        metrics = anon.get("/metrics").text
    assert "rag_index_articles 2.0" in metrics

    # a delete through B leaves A's answers too; A's uploaded file is A's to remove
    with _client(b, ADMIN_KEY) as cb:
        gone = cb.delete(f"/v1/articles/{aid}")
    assert gone.status_code == 200 and gone.json()["file_deleted"] is False and gone.json()["note"]
    assert (a_data / "uploads" / "keepers.txt").exists()
    with _client(a) as ca:
        assert ca.get(f"/v1/articles/{aid}").status_code == 404
    _within(RECHECK_S + MARGIN_S, lambda: not _cites(a, aid))

    # `rag serve` writes one JSON line per request to standard error, with no key in it (the line of the
    # last request may reach the file a moment after its response)
    def records() -> list[dict[str, Any]]:
        log = (a_data.parent / "a.log").read_text(encoding="utf-8")
        return [json.loads(line) for line in log.splitlines() if line.startswith("{")]

    _within(10, lambda: any(r["route"] == "/v1/ask" and r.get("mode") == "extractive" for r in records()))
    assert {"method": "POST", "route": "/v1/articles", "status": 200}.items() <= next(
        r for r in records() if r["route"] == "/v1/articles" and r["method"] == "POST"
    ).items()
    log = (a_data.parent / "a.log").read_text(encoding="utf-8")
    assert READ_KEY not in log and ADMIN_KEY not in log and KEEPERS not in log
