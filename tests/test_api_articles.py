"""Articles over the API on a real server: list, get, multipart upload, delete, and no half-ingested article."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from conftest import CORPUS, make_settings
from test_api import ADMIN_KEY, READ_KEY, RUSSIA, Api, close, free_port

from rag import RagService
from rag.api import build_server, key_digest, start_in_thread, stop

pytestmark = pytest.mark.timeout(300)

KEEPERS = "Who were the lighthouse keepers?"
LIGHTHOUSE = (
    "The last staffed lighthouse on the Vardø coast was automated on Monday. Its two keepers, Ingrid Solheim and "
    "Per Aas, had tended the lamp for thirty-one years. The coastal authority said the automation cost 4.2 million "
    "kroner and would cut maintenance visits to four a year."
)
LIGHTHOUSE_V2 = (
    "The last staffed lighthouse on the Vardø coast was automated on Monday. Its two keepers, Nils Berg and Ola "
    "Dahl, had tended the lamp for twelve years. The coastal authority said the automation cost 4.2 million kroner."
)
RECORDS = [
    {
        "id": "orchard",
        "title": "Frost spares the pear orchards",
        "source": "Hardanger Tidend",
        "published": "2025-04-11",
        "text": "Growers in the Hardanger valley said a late frost spared most pear orchards this spring. Wind "
        "machines ran through the night of April 9, and the cooperative expects a harvest of 1,800 tonnes.",
    },
    {
        "id": "ferry",
        "title": "Night ferry returns to the fjord",
        "source": "Kystposten",
        "published": "2025-05-02",
        "text": "The night ferry between Bergen and Florø returned to service on Friday after a winter refit. The "
        "operator said the crossing takes four hours and fifty minutes with two stops.",
    },
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The seed corpus behind a real in-process server (so a test can pause the index mid-write)."""
    root = tmp_path_factory.mktemp("articles")
    key_file = root / "keys.txt"
    key_file.write_text(f"{key_digest(ADMIN_KEY)}:admin\n", encoding="utf-8")
    svc = RagService(make_settings(root / "data", api_keys=READ_KEY, api_key_file=key_file, max_upload_mb=1))
    svc.ingest([CORPUS])
    port = free_port()
    server = build_server(svc, "127.0.0.1", port, log_level="warning")
    thread = start_in_thread(server)
    yield Api(f"http://127.0.0.1:{port}", svc)
    stop(server, thread)
    close(svc)


def upload(api: Api, files: list[tuple[str, bytes]], replace: bool = False, key: str = ADMIN_KEY) -> httpx.Response:
    with api.client(key) as c:
        data = {"replace": "true"} if replace else {}
        return c.post("/v1/articles", files=[("file", f) for f in files], data=data)


def ask(api: Api, question: str) -> dict[str, Any]:
    with api.client() as c:
        r = c.post("/v1/ask", json={"question": question})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def cited_ids(answer: dict[str, Any]) -> set[str]:
    return {c["article_id"] for c in answer["citations"]}


def delete(api: Api, article_id: str) -> httpx.Response:
    with api.client(ADMIN_KEY) as c:
        return c.delete(f"/v1/articles/{article_id}")


def jsonl(records: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


# -- list and get ---------------------------------------------------------------------------------------------
def test_list_pages_and_filters_by_title_source_and_date(api: Api) -> None:
    r = upload(api, [("news.jsonl", jsonl(RECORDS))])
    assert r.status_code == 200, r.text
    try:
        with api.client() as c:
            everything = c.get("/v1/articles").json()
            assert everything["total"] == 3 and len(everything["data"]) == 3
            # newest first, the undated seed article last
            assert [a["article_id"] for a in everything["data"]][:2] == ["ferry", "orchard"]
            pages = [c.get("/v1/articles", params={"limit": 1, "offset": i}).json() for i in range(4)]
            assert [len(p["data"]) for p in pages] == [1, 1, 1, 0] and all(p["total"] == 3 for p in pages)
            assert [p["data"][0]["article_id"] for p in pages[:3]] == [a["article_id"] for a in everything["data"]]
            by = {q: [a["article_id"] for a in c.get("/v1/articles", params={"q": q}).json()["data"]]
                  for q in ("PEAR", "kystposten", "2025-04", "frost 2025", "frost kystposten", "tsunami")}
            assert by == {"PEAR": ["orchard"], "kystposten": ["ferry"], "2025-04": ["orchard"],
                          "frost 2025": ["orchard"], "frost kystposten": [], "tsunami": []}
            assert everything["data"][0]["file"] == "news.jsonl" and everything["data"][0]["uploaded"] is True
            assert "source_path" not in everything["data"][0]  # no server paths
            for bad in ({"limit": 0}, {"limit": 5000}, {"offset": -1}, {"limit": "ten"}):
                assert c.get("/v1/articles", params=bad).status_code == 400, bad
    finally:
        for aid in ("orchard", "ferry"):
            delete(api, aid)


def test_get_one_article_with_its_text_and_404_for_an_unknown_id(api: Api) -> None:
    seed = api.service.list_articles()[0]["article_id"]
    with api.client() as c:
        r = c.get(f"/v1/articles/{seed}")
        missing = c.get("/v1/articles/no-such-article")
    assert r.status_code == 200 and r.json()["article_id"] == seed
    assert r.json()["text"] == api.service.get_article(seed).text  # type: ignore[union-attr]
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["type"] == "not_found_error" and "no-such-article" in error["message"]


# -- upload -------------------------------------------------------------------------------------------------
def test_upload_needs_admin_and_says_what_was_added_unchanged_updated(api: Api) -> None:
    r = upload(api, [("lighthouse.txt", LIGHTHOUSE.encode())], key=READ_KEY)
    assert r.status_code == 403
    with api.client(key=None) as c:
        assert c.post("/v1/articles", files={"file": ("x.txt", b"text")}).status_code == 401
    first = upload(api, [("lighthouse.txt", LIGHTHOUSE.encode())])
    assert first.status_code == 200, first.text
    f = first.json()["files"][0]
    assert (f["status"], f["saved_as"], first.json()["added"]) == ("added", "lighthouse.txt", 1)
    aid = f["articles"][0]["article_id"]
    try:
        assert aid in cited_ids(ask(api, KEEPERS))
        again = upload(api, [("lighthouse.txt", LIGHTHOUSE.encode())]).json()
        assert again["files"][0]["status"] == "unchanged" and again["unchanged"] == 1 and again["added"] == 0
        replaced = upload(api, [("lighthouse.txt", LIGHTHOUSE_V2.encode())], replace=True).json()
        assert replaced["files"][0]["status"] == "updated" and replaced["files"][0]["saved_as"] == "lighthouse.txt"
        assert "Nils Berg" in ask(api, KEEPERS)["answer"]
    finally:
        assert delete(api, aid).status_code == 200


def test_a_colliding_name_never_overwrites_another_upload(api: Api) -> None:
    one = upload(api, [("report.txt", LIGHTHOUSE.encode())]).json()["files"][0]
    two = upload(api, [("report.txt", LIGHTHOUSE_V2.encode())]).json()["files"][0]
    try:
        assert one["saved_as"] == "report.txt" and two["status"] == "added"
        assert two["saved_as"] != "report.txt" and two["saved_as"].startswith("report-")
        folder = api.service.settings.data_dir / "uploads"
        assert (folder / "report.txt").read_text(encoding="utf-8") == LIGHTHOUSE  # the first is intact
        assert (folder / two["saved_as"]).read_text(encoding="utf-8") == LIGHTHOUSE_V2
    finally:
        for f in (one, two):
            delete(api, f["articles"][0]["article_id"])


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("virus.exe", b"MZ\x90\x00 binary", "unsupported type"),
        ("notes.pdf", b"%PDF-1.4 text", "unsupported type"),
        ("empty.txt", b"   \n", "empty"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("broken.json", b'{"text": "unterminated', "json"),
    ],
)
def test_bad_files_are_refused_with_the_reason(api: Api, name: str, data: bytes, needle: str) -> None:
    before = {a["article_id"] for a in api.service.list_articles()}
    r = upload(api, [(name, data)])
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert name in r.json()["error"]["message"] and needle in r.json()["error"]["message"].lower()
    assert {a["article_id"] for a in api.service.list_articles()} == before
    assert not (api.service.settings.data_dir / "uploads" / name).exists()  # nothing usable is kept


def test_a_mixed_upload_reports_each_file(api: Api) -> None:
    r = upload(api, [("good.txt", LIGHTHOUSE.encode()), ("bad.exe", b"MZ")])
    assert r.status_code == 200, r.text
    files = {f["name"]: f for f in r.json()["files"]}
    try:
        assert files["good.txt"]["status"] == "added" and files["bad.exe"]["status"] == "rejected"
        assert "unsupported type" in files["bad.exe"]["reason"] and r.json()["skipped"] == 1
    finally:
        delete(api, files["good.txt"]["articles"][0]["article_id"])


@pytest.mark.parametrize("name", ["../../escape.txt", "/etc/cron.d/escape.txt", "..\\..\\escape.txt", ".hidden.txt"])
def test_upload_names_never_escape_the_uploads_folder(api: Api, name: str) -> None:
    data_dir = api.service.settings.data_dir
    r = upload(api, [(name, LIGHTHOUSE.encode())])
    assert r.status_code == 200, r.text
    f = r.json()["files"][0]
    try:
        saved = (data_dir / "uploads" / f["saved_as"]).resolve()
        assert saved.parent == (data_dir / "uploads").resolve() and saved.exists()
        assert "/" not in f["saved_as"] and "\\" not in f["saved_as"] and not f["saved_as"].startswith(".")
        assert not (data_dir / "escape.txt").exists() and not (data_dir.parent / "escape.txt").exists()
    finally:
        delete(api, f["articles"][0]["article_id"])


def test_an_upload_over_the_limit_is_413(api: Api) -> None:
    big = ("x" * 99 + "\n").encode() * 15_000  # 1.5 MB against RAG_MAX_UPLOAD_MB=1
    r = upload(api, [("big.txt", big)])
    assert r.status_code == 413 and "RAG_MAX_UPLOAD_MB" in r.json()["error"]["message"]


# -- delete ------------------------------------------------------------------------------------------------------
def test_delete_removes_the_article_and_its_uploaded_file(api: Api) -> None:
    f = upload(api, [("gone.txt", LIGHTHOUSE.encode())]).json()["files"][0]
    aid = f["articles"][0]["article_id"]
    path = api.service.settings.data_dir / "uploads" / "gone.txt"
    assert path.exists()
    with api.client(READ_KEY) as c:
        assert c.delete(f"/v1/articles/{aid}").status_code == 403
    r = delete(api, aid)
    assert r.status_code == 200, r.text
    assert r.json()["file_deleted"] is True and r.json()["chunks"] > 0 and not path.exists()
    with api.client() as c:
        assert c.get(f"/v1/articles/{aid}").status_code == 404
    assert aid not in cited_ids(ask(api, KEEPERS))
    assert delete(api, aid).status_code == 404


# -- never a half-ingested article ---------------------------------------------------------------------------------
class PausedRegistry:
    """The real article collection, with writes of article records (the commit marker) held until released."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.reached = threading.Event()
        self.release = threading.Event()

    def upsert(self, *args: Any, **kw: Any) -> Any:
        self.reached.set()
        assert self.release.wait(120), "never released"
        return self.real.upsert(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def paused(api: Api) -> Iterator[PausedRegistry]:
    store = api.service._store
    real = store.articles
    gate = PausedRegistry(real)
    store._articles = gate
    try:
        yield gate
    finally:
        gate.release.set()
        store._articles = real


def _upload_in_background(api: Api, gate: PausedRegistry, files: list[tuple[str, bytes]],
                          replace: bool = False) -> Any:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(upload, api, files, replace)
    assert gate.reached.wait(120), "the upload never reached its commit"
    pool.shutdown(wait=False)
    return future


def test_a_new_article_is_not_served_before_its_record_is_written(api: Api, paused: PausedRegistry) -> None:
    future = _upload_in_background(api, paused, [("paused.txt", LIGHTHOUSE.encode())])
    try:
        # its chunks are in the index now, its record is not: nobody may see it yet
        answer = ask(api, KEEPERS)
        assert "Ingrid Solheim" not in answer["answer"]
        assert all("Solheim" not in c["quote"] for c in answer["citations"])
        with api.client() as c:
            assert all(a["file"] != "paused.txt" for a in c.get("/v1/articles").json()["data"])
    finally:
        paused.release.set()
        r = future.result(timeout=120)
        assert r.status_code == 200, r.text
        aid = r.json()["files"][0]["articles"][0]["article_id"]
    try:
        assert aid in cited_ids(ask(api, KEEPERS))
    finally:
        delete(api, aid)


def test_an_update_is_not_served_before_its_record_is_written(api: Api) -> None:
    first = upload(api, [("update.txt", LIGHTHOUSE.encode())]).json()["files"][0]
    aid = first["articles"][0]["article_id"]
    store = api.service._store
    real = store.articles
    gate = PausedRegistry(real)
    store._articles = gate
    try:
        future = _upload_in_background(api, gate, [("update.txt", LIGHTHOUSE_V2.encode())], replace=True)
        try:
            answer = ask(api, KEEPERS)  # the new chunks are written, the record still holds the old text
            assert "Nils Berg" not in answer["answer"]
            old_text = real.get(ids=[aid], include=["documents"])["documents"][0]
            for c in answer["citations"]:
                if c["article_id"] == aid:
                    assert old_text[c["start"] : c["end"]] == c["quote"]
        finally:
            gate.release.set()
            store._articles = real
            done = future.result(timeout=120)
        assert done.status_code == 200, done.text
        assert "Nils Berg" in ask(api, KEEPERS)["answer"]
    finally:
        gate.release.set()
        store._articles = real
        delete(api, aid)


def test_concurrent_asks_during_uploads_always_cite_committed_text(api: Api) -> None:
    """Asks in threads while articles are uploaded and deleted: every answer is 200 and every quote is the
    stored text of a registered article at its offsets."""
    stop_asking = threading.Event()
    answers: list[dict[str, Any]] = []
    errors: list[str] = []

    def asker() -> None:
        with api.client() as c:
            while not stop_asking.is_set():
                for q in (KEEPERS, "What harvest does the pear cooperative expect?", RUSSIA):
                    r = c.post("/v1/ask", json={"question": q})
                    if r.status_code != 200:
                        errors.append(r.text)
                    else:
                        answers.append(r.json())

    threads = [threading.Thread(target=asker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for round_ in range(3):
            r = upload(api, [(f"round{round_}.jsonl", jsonl(RECORDS)), (f"lh{round_}.txt", LIGHTHOUSE.encode())])
            assert r.status_code == 200, r.text
            for f in r.json()["files"]:
                for a in f["articles"]:
                    assert delete(api, a["article_id"]).status_code == 200
    finally:
        stop_asking.set()
        for t in threads:
            t.join(120)
    assert not errors, errors[:3]
    assert answers
    texts: dict[str, str | None] = {}
    for a in answers:
        for c in a["citations"]:
            if c["article_id"] not in texts:
                art = api.service.get_article(c["article_id"])
                texts[c["article_id"]] = art.text if art else None
            text = texts[c["article_id"]]
            if text is not None:  # a deleted article was committed when it was cited; its text is the same
                assert text[c["start"] : c["end"]] == c["quote"]
            else:
                assert any(c["quote"] in t for t in (LIGHTHOUSE, *(rec["text"] for rec in RECORDS)))


def test_openapi_documents_the_article_routes(api: Api) -> None:
    with api.client(key=None) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/articles"])
    assert {"get", "delete"} <= set(paths["/v1/articles/{article_id}"])
