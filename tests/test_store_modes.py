"""The store and the app end to end, in embedded mode and against a real `chroma run` server."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, make_settings
from conftest import stop_process as stop

from rag import RagIndexError, RagService, Settings

CHROMA = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`chroma run` from the installed chromadb on a free port; returns once its heartbeat answers."""
    port = free_port()
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"chroma run exited with {proc.returncode}: {err[-500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chroma run did not answer its heartbeat within 60 s")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield port
    stop(proc)


@pytest.fixture(params=["embedded", "server"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def settings_for(mode: str, data_dir: Path, request: pytest.FixtureRequest, **kw: object) -> Settings:
    if mode == "server":
        port = request.getfixturevalue("chroma_server")
        # One server for the session: each test gets its own collections.
        kw = {"chroma_host": "127.0.0.1", "chroma_port": port, "collection": f"t-{uuid.uuid4().hex[:12]}", **kw}
    return make_settings(data_dir, **kw)


ARTICLES = [
    {
        "id": "lighthouse",
        "title": "Keepers leave the last lighthouse",
        "published": "2025/03/02",
        "text": "The last staffed lighthouse on the Vardø coast was automated on Monday. Its two keepers, "
        "Ingrid Solheim and Per Aas, had tended the lamp for thirty-one years. The coastal authority said "
        "the automation cost 4.2 million kroner and would cut maintenance visits to four a year.",
    },
    {
        "id": "orchard",
        "title": "Frost spares the pear orchards",
        "published": "2025/04/11",
        "text": "Growers in the Hardanger valley said a late frost spared most pear orchards this spring. "
        "Wind machines ran through the night of April 9, and the cooperative expects a harvest of "
        "1,800 tonnes, close to last year's record.",
    },
]


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_ingest_ask_update_delete(mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    svc = RagService(settings_for(mode, tmp_path / "data", request))
    src = write_jsonl(tmp_path / "news.jsonl", ARTICLES)
    first = svc.ingest([CORPUS, src])
    assert first.added == 3 and first.chunks_added == svc.stats()["chunks"] > 0

    a = svc.ask("How long had the keepers tended the lighthouse lamp?")
    assert not a.refused
    assert any(c.article_id == "lighthouse" for c in a.citations)
    for c in a.citations:
        art = svc.get_article(c.article_id)
        assert art is not None and art.text[c.start : c.end] == c.quote

    # A no-op re-ingest by a fresh instance neither changes anything nor loads the model.
    again = RagService(svc.settings)
    noop = again.ingest([CORPUS, src])
    assert (noop.added, noop.updated, noop.unchanged) == (0, 0, 3)
    assert not again.embedder_loaded

    # An edited article replaces its chunks: the old wording is gone from both retrievers.
    changed = [dict(ARTICLES[0], text=ARTICLES[0]["text"].replace("thirty-one", "forty-four")), ARTICLES[1]]
    upd = again.ingest([CORPUS, write_jsonl(src, changed)])
    assert upd.updated == 1 and upd.unchanged == 2
    texts = [p.text for p in again.retrieve("keepers tended the lamp years", 5, method="bm25")]
    assert any("forty-four" in t for t in texts) and not any("thirty-one" in t for t in texts)
    assert again.stats()["chunks"] == sum(
        len(again._store.chunks.get(where={"article_id": aid})["ids"])
        for aid in ("lighthouse", "orchard", *_seed_ids(again))
    )

    assert again.delete_article("orchard") > 0
    assert again.get_article("orchard") is None
    assert all(p.article_id != "orchard" for p in again.retrieve("pear orchards frost harvest", 5))


def _seed_ids(svc: RagService) -> list[str]:
    return [a["article_id"] for a in svc.list_articles() if a["article_id"] not in ("lighthouse", "orchard")]


def test_two_app_instances_share_one_server(chroma_server: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    writer = RagService(settings_for("server", tmp_path / "a", request))
    reader = RagService(settings_for("server", tmp_path / "b", request, collection=writer.settings.collection))
    writer.ingest([write_jsonl(tmp_path / "one.jsonl", ARTICLES[:1])])
    assert reader.ask("Who were the lighthouse keepers?").citations[0].article_id == "lighthouse"
    before = reader._store.revision()
    assert reader._bm25.is_current()

    writer.ingest([write_jsonl(tmp_path / "two.jsonl", ARTICLES[1:])])
    # The reader sees the other instance's change: a new revision, so its BM25 cache is stale...
    assert reader._store.revision() != before
    assert not reader._bm25.is_current()
    # ...and the new article is searchable from it.
    a = reader.ask("What harvest does the pear cooperative expect?")
    assert any(c.article_id == "orchard" for c in a.citations)


def test_server_down_names_host_and_port(tmp_path: Path) -> None:
    port = free_port()
    svc = RagService(make_settings(tmp_path / "d", chroma_host="127.0.0.1", chroma_port=port))
    with pytest.raises(RagIndexError) as err:
        svc.ask("anything?")
    assert f"127.0.0.1:{port}" in err.value.user_message
    assert "chroma run" in err.value.user_message


def test_server_that_goes_away_mid_session(tmp_path: Path) -> None:
    proc, port = start_chroma(tmp_path / "srv")
    try:
        svc = RagService(make_settings(tmp_path / "d", chroma_host="127.0.0.1", chroma_port=port))
        svc.ingest([write_jsonl(tmp_path / "n.jsonl", ARTICLES)])
        assert not svc.ask("What did the lighthouse automation cost?").refused
    finally:
        stop(proc)
    with pytest.raises(RagIndexError) as err:
        svc.ask("What did the lighthouse automation cost?")
    assert f"127.0.0.1:{port}" in err.value.user_message
    with pytest.raises(RagIndexError) as err:  # the UI sidebar's call (was an unexpected ConnectError)
        svc.stats()
    assert f"127.0.0.1:{port}" in err.value.user_message


def test_server_lost_mid_ingest_then_resumed(tmp_path: Path) -> None:
    """A write that fails on the write-behind thread surfaces as the ingest's error; a re-run completes it."""
    records = [
        {"id": f"n{i:03d}", "title": f"Harbour note {i}", "text": f"Ferry {i} left the harbour at {i % 24:02d}:15. "
         f"It carried {i * 3} passengers to island number {i}."}
        for i in range(300)
    ]
    src = write_jsonl(tmp_path / "notes.jsonl", records)
    proc, port = start_chroma(tmp_path / "srv")
    committed: list[int] = []

    def progress(done: int, chunks: int) -> None:
        if chunks and not committed:  # the first batch is written: the server goes away
            committed.append(chunks)
            stop(proc)

    try:
        svc = RagService(make_settings(tmp_path / "d", chroma_host="127.0.0.1", chroma_port=port))
        with pytest.raises(RagIndexError) as err:
            svc.ingest([src], progress=progress)
        assert f"127.0.0.1:{port}" in err.value.user_message
        assert committed and committed[0] < len(records)
    finally:
        stop(proc)
    proc, port = start_chroma(tmp_path / "srv")
    try:
        svc = RagService(make_settings(tmp_path / "d", chroma_host="127.0.0.1", chroma_port=port))
        report = svc.ingest([src])
        assert report.added + report.unchanged == len(records)
        assert report.unchanged >= 1  # the first batch was committed before the server went away
        assert svc.stats()["articles"] == len(records)
        assert svc.stats()["chunks"] == len(records)  # one chunk each: no duplicate, none missing
    finally:
        stop(proc)


def test_cli_reports_a_down_server_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CHROMA_HOST="127.0.0.1", RAG_CHROMA_PORT=str(port), RAG_DATA_DIR=str(tmp_path / "d"))
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", "anything?"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Traceback" not in out.stderr


# -- a bearer-token auth proxy in front of the server (Chroma 1.x has no built-in auth) -----------
class _AuthProxy(BaseHTTPRequestHandler):
    upstream_port = 0
    token = ""
    seen: list[str | None] = []  # noqa: RUF012 - per-class record of Authorization headers

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        auth = self.headers.get("Authorization")
        type(self).seen.append(auth)
        if auth != f"Bearer {self.token}":
            body = b'{"error":"Unauthorized"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        conn.request(self.command, self.path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


def test_token_is_sent_as_bearer_header(chroma_server: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    handler = type("Proxy", (_AuthProxy,), {"upstream_port": chroma_server, "token": "s3cret-token", "seen": []})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    port = proxy.server_address[1]
    try:
        collection = f"t-{uuid.uuid4().hex[:12]}"
        ok = RagService(
            make_settings(
                tmp_path / "ok",
                chroma_host="127.0.0.1",
                chroma_port=port,
                chroma_token="s3cret-token",
                collection=collection,
            )
        )
        ok.ingest([write_jsonl(tmp_path / "n.jsonl", ARTICLES)])
        assert any(c.article_id == "orchard" for c in ok.ask("How many tonnes of pears are expected?").citations)
        assert handler.seen and all(h == "Bearer s3cret-token" for h in handler.seen)

        for token in (None, "wrong"):
            bad = RagService(
                make_settings(
                    tmp_path / f"bad-{token}",
                    chroma_host="127.0.0.1",
                    chroma_port=port,
                    chroma_token=token,
                    collection=collection,
                )
            )
            with pytest.raises(RagIndexError) as err:
                bad.ask("How many tonnes of pears are expected?")
            assert f"127.0.0.1:{port}" in err.value.user_message and "RAG_CHROMA_TOKEN" in err.value.user_message
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_an_index_embedded_with_the_other_chunk_header_says_what_to_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    plain = RagService(make_settings(data))
    plain.ingest()
    before = plain.stats()["chunks"]
    plain.close()
    headed = RagService(make_settings(data, embed_title_header=True))
    with pytest.raises(RagIndexError, match=r"without article-title chunk headers.*rag ingest --rebuild"):
        headed.retrieve("What does Russia want?", 3)
    headed.close()
    # `rag ingest --rebuild` re-embeds the stored articles with the header: same chunks, new vectors
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", "--rebuild", "-q"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "RAG_DATA_DIR": str(data), "RAG_CORPUS_DIR": str(CORPUS), "RAG_EMBED_TITLE_HEADER": "true"},
    )
    assert out.returncode == 0, out.stderr
    assert "re-embedding the index: 1 articles" in out.stderr
    headed = RagService(make_settings(data, embed_title_header=True))
    assert headed.stats()["chunks"] == before
    assert headed.retrieve("What does Russia want?", 3)
    headed.close()
    with pytest.raises(RagIndexError, match="with article-title chunk headers"):
        RagService(make_settings(data)).retrieve("What does Russia want?", 3)
    # a rebuild cut short is not taken as done
    headed = RagService(make_settings(data, embed_title_header=True))
    headed._store.set_embed_header("rebuilding")
    headed.close()
    with pytest.raises(RagIndexError, match=r"interrupted - run it again"):
        RagService(make_settings(data, embed_title_header=True)).retrieve("What does Russia want?", 3)
