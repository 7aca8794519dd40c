"""The HTTP API on a real uvicorn server on 127.0.0.1: httpx, the openai client, LangChain, malformed requests."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import CORPUS, make_settings

from rag import RagService
from rag.api import build_server, key_digest, start_in_thread, stop

pytestmark = pytest.mark.timeout(180)

READ_KEY = "read-key-0123456789abcdef-DO-NOT-LEAK"
ADMIN_KEY = "admin-key-0123456789abcdef-DO-NOT-LEAK"
RUSSIA = "What does Russia want?"
UNANSWERABLE = "Which team won the Champions League final?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def close(svc: RagService) -> None:
    closer = getattr(svc, "close", None)  # the index-ownership work adds RagService.close()
    if callable(closer):
        closer()


@dataclass
class Api:
    url: str
    service: RagService

    def client(self, key: str | None = READ_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def openai(self, key: str = READ_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The seed corpus behind a real server: a read key from RAG_API_KEYS, an admin key from RAG_API_KEY_FILE."""
    root = tmp_path_factory.mktemp("api")
    key_file = root / "keys.txt"
    key_file.write_text(f"# admin\n{key_digest(ADMIN_KEY)}:admin\n", encoding="utf-8")
    svc = RagService(make_settings(root / "data", api_keys=READ_KEY, api_key_file=key_file))
    svc.ingest([CORPUS])
    port = free_port()
    server = build_server(svc, "127.0.0.1", port, log_level="warning")
    thread = start_in_thread(server)
    yield Api(f"http://127.0.0.1:{port}", svc)
    stop(server, thread)
    close(svc)


def assert_cited(answer: dict[str, Any], svc: RagService) -> None:
    """Cited like the contract says: [n] in the text, verbatim quotes at their offsets, sentences pointing at them."""
    assert not answer["refused"], answer
    assert answer["citations"], answer
    ns = {c["n"] for c in answer["citations"]}
    for c in answer["citations"]:
        assert f"[{c['n']}]" in answer["answer"]
        article = svc.get_article(c["article_id"])
        assert article is not None
        assert article.text[c["start"] : c["end"]] == c["quote"]
    assert answer["sentences"]
    for s in answer["sentences"]:
        assert set(s["citations"]) <= ns and isinstance(s["supported"], bool)


# -- /v1/ask ------------------------------------------------------------------------------------------
def test_ask_json_returns_the_answer_object(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/ask", json={"question": RUSSIA, "k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    for key in ("question", "standalone_question", "answer", "refused", "mode", "citations", "sentences", "contexts"):
        assert key in body
    assert body["question"] == RUSSIA and body["mode"] == "extractive"
    assert len(body["contexts"]) <= 4
    assert "total" in body["timings_ms"]
    assert_cited(body, api.service)


def test_ask_sse_streams_steps_text_then_the_answer(api: Api) -> None:
    events: list[tuple[str, Any]] = []
    with api.client() as c, c.stream("POST", "/v1/ask", json={"question": RUSSIA, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "step" and kinds[-1] == "answer" and "text" in kinds, kinds
    final = events[-1][1]
    assert "".join(v["text"] for k, v in events if k == "text") == final["answer"]
    assert_cited(final, api.service)


def test_ask_follow_up_uses_the_history_sent(api: Api) -> None:
    with api.client() as c:
        first = c.post("/v1/ask", json={"question": RUSSIA}).json()
        history = [{"question": RUSSIA, "answer": first["answer"]}]
        r = c.post("/v1/ask", json={"question": "And what about Donetsk?", "history": history})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["standalone_question"] != body["question"]
    assert "donetsk" in body["answer"].lower()


def test_refusal_is_a_normal_answer(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/ask", json={"question": UNANSWERABLE})
    assert r.status_code == 200
    assert r.json()["refused"] is True and r.json()["citations"] == []


def test_date_filters_leave_the_undated_seed_article_out(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/ask", json={"question": RUSSIA, "since": "2020-01-01", "as_of": "2030-01-01"})
    assert r.status_code == 200, r.text
    assert r.json()["refused"] is True and r.json()["citations"] == []


# -- OpenAI-compatible ----------------------------------------------------------------------------------
def test_openai_client_non_streaming_reads_citations_from_model_extra(api: Api) -> None:
    completion = api.openai().chat.completions.create(
        model="rag", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": RUSSIA}]
    )
    assert completion.object == "chat.completion" and completion.model == "rag"
    msg = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    extra = msg.model_extra or {}
    assert_cited({"answer": msg.content, **extra}, api.service)


def test_openai_client_streaming_puts_citations_on_the_final_chunk(api: Api) -> None:
    stream = api.openai().chat.completions.create(
        model="rag-extractive", messages=[{"role": "user", "content": RUSSIA}], stream=True
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    final = chunks[-1].choices[0]
    assert final.finish_reason == "stop"
    extra = final.delta.model_extra or {}
    assert all(not (ch.choices[0].delta.model_extra or {}).get("citations") for ch in chunks[:-1])
    assert text == extra["answer"]
    assert_cited({**extra, "answer": text}, api.service)


def test_openai_conversation_becomes_history(api: Api) -> None:
    first = api.openai().chat.completions.create(model="rag", messages=[{"role": "user", "content": RUSSIA}])
    follow = api.openai().chat.completions.create(
        model="rag",
        messages=[
            {"role": "user", "content": RUSSIA},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": [{"type": "text", "text": "And what about Donetsk?"}]},
        ],
    )
    extra = follow.choices[0].message.model_extra or {}
    assert (
        "donetsk" in extra["standalone_question"].lower() and extra["standalone_question"] != "And what about Donetsk?"
    )


def test_openai_refusal_is_a_normal_completion(api: Api) -> None:
    completion = api.openai().chat.completions.create(model="rag", messages=[{"role": "user", "content": UNANSWERABLE}])
    extra = completion.choices[0].message.model_extra or {}
    assert completion.choices[0].finish_reason == "stop"
    assert extra["refused"] is True and extra["citations"] == []
    assert completion.choices[0].message.content


def test_models_lists_the_modes_available(api: Api) -> None:
    ids = {m.id for m in api.openai().models.list()}
    assert ids == {"rag", "rag-extractive"}  # no LLM configured: rag-llm is not offered


def test_unknown_model_is_404_and_rag_llm_without_llm_is_400(api: Api) -> None:
    client = api.openai()
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": RUSSIA}])
    assert nf.value.code == "model_not_found" and "rag-extractive" in nf.value.message
    with pytest.raises(openai.BadRequestError) as br:
        client.chat.completions.create(model="rag-llm", messages=[{"role": "user", "content": RUSSIA}])
    assert br.value.code == "model_not_available" and "RAG_LLM_BASE_URL" in br.value.message


def test_langchain_chat_openai_against_the_server(api: Api) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{api.url}/v1", api_key=READ_KEY, model="rag-extractive", max_retries=0)  # type: ignore[arg-type]
    reply = llm.invoke(RUSSIA)
    assert "[1]" in str(reply.content)
    streamed = "".join(str(chunk.content) for chunk in llm.stream(RUSSIA))
    assert streamed == reply.content


# -- keys and roles over HTTP ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer wrong-key-0123456789abcdef"}, "invalid_api_key"),
        ({"Authorization": f"Basic {READ_KEY}"}, "missing_api_key"),
        ({"Authorization": "Bearer"}, "missing_api_key"),
        ({"Authorization": f"Bearer {READ_KEY[:-1]}"}, "invalid_api_key"),
    ],
    ids=["no-key", "wrong-key", "not-bearer", "empty-bearer", "prefix-of-key"],
)
@pytest.mark.parametrize("path", ["/v1/ask", "/v1/chat/completions", "/v1/models", "/v1/articles"])
def test_missing_or_wrong_key_is_401_with_a_bearer_challenge(
    api: Api, headers: dict[str, str], code: str, path: str
) -> None:
    with httpx.Client(base_url=api.url, headers=headers) as c:
        r = c.get(path) if path in ("/v1/models", "/v1/articles") else c.post(path, json={"question": RUSSIA})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["type"] == "authentication_error"


def test_read_key_is_403_on_an_admin_route_and_admin_key_passes(api: Api) -> None:
    with api.client(READ_KEY) as c:
        r = c.get("/v1/admin/whoami")
        assert c.get("/v1/articles").status_code == 200
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert "read" in r.json()["error"]["message"]
    with api.client(ADMIN_KEY) as c:  # from RAG_API_KEY_FILE; admin also covers read
        assert c.get("/v1/admin/whoami").json() == {"role": "admin", "anonymous": False}
        assert c.post("/v1/ask", json={"question": RUSSIA}).status_code == 200


def test_openai_client_with_a_wrong_key_gets_authentication_error(api: Api) -> None:
    with pytest.raises(openai.AuthenticationError) as exc:
        api.openai(key="sk-wrong-0123456789abcdef").models.list()
    assert exc.value.code == "invalid_api_key"


# -- health, schema ---------------------------------------------------------------------------------------
def test_health_and_readiness_need_no_key(api: Api) -> None:
    with api.client(key=None) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["articles"] == 1


def test_readyz_is_503_with_the_reason_on_an_empty_index(tmp_path: Path) -> None:
    svc = RagService(make_settings(tmp_path / "empty"))
    port = free_port()
    server = build_server(svc, "127.0.0.1", port, log_level="warning")
    thread = start_in_thread(server)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and "rag ingest" in r.json()["error"]["message"]
            ask = c.post("/v1/ask", json={"question": RUSSIA})
            assert ask.status_code == 503 and "rag ingest" in ask.json()["error"]["message"]
    finally:
        stop(server, thread)
        close(svc)


def test_openapi_documents_every_route(api: Api) -> None:
    with api.client(key=None) as c:
        schema = c.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/v1/ask", "/v1/chat/completions", "/v1/models", "/v1/articles", "/healthz", "/readyz"):
        assert path in paths, path
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert "AnswerOut" in schema["components"]["schemas"]


# -- malformed requests: 4xx with the JSON error shape, never 500 --------------------------------------------
def _msgs(n: int) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": "Russia?"} for i in range(n)]


CHAT = "/v1/chat/completions"
OK_CHAT: dict[str, Any] = {"model": "rag", "messages": [{"role": "user", "content": RUSSIA}]}
MALFORMED: list[tuple[str, str, Any, int]] = [
    ("ask-bad-json", "/v1/ask", b'{"question": "What', 400),
    ("ask-not-object", "/v1/ask", [RUSSIA], 400),
    ("ask-question-int", "/v1/ask", {"question": 42}, 400),
    ("ask-question-missing", "/v1/ask", {"k": 3}, 400),
    ("ask-question-empty", "/v1/ask", {"question": ""}, 400),
    ("ask-question-blank", "/v1/ask", {"question": "   \n"}, 400),
    ("ask-question-too-long", "/v1/ask", {"question": "Russia " * 400}, 400),
    ("ask-k-zero", "/v1/ask", {"question": RUSSIA, "k": 0}, 400),
    ("ask-k-too-big", "/v1/ask", {"question": RUSSIA, "k": 51}, 400),
    ("ask-k-string", "/v1/ask", {"question": RUSSIA, "k": "5"}, 400),
    ("ask-mode-unknown", "/v1/ask", {"question": RUSSIA, "mode": "poetry"}, 400),
    ("ask-mode-llm-unconfigured", "/v1/ask", {"question": RUSSIA, "mode": "llm"}, 400),
    ("ask-stream-string", "/v1/ask", {"question": RUSSIA, "stream": "yes"}, 400),
    ("ask-history-not-list", "/v1/ask", {"question": RUSSIA, "history": "earlier"}, 400),
    ("ask-history-turn-shape", "/v1/ask", {"question": RUSSIA, "history": [{"q": "x"}]}, 400),
    ("ask-history-too-long", "/v1/ask", {"question": RUSSIA, "history": [{"question": "a", "answer": "b"}] * 51}, 400),
    ("ask-unknown-field", "/v1/ask", {"question": RUSSIA, "top_k": 3}, 400),
    ("ask-since-malformed", "/v1/ask", {"question": RUSSIA, "since": "yesterday"}, 400),
    ("ask-since-int", "/v1/ask", {"question": RUSSIA, "since": 2024}, 400),
    ("ask-since-after-until", "/v1/ask", {"question": RUSSIA, "since": "2025-02-01", "until": "2025-01-01"}, 400),
    (
        "ask-body-too-large",
        "/v1/ask",
        {"question": RUSSIA, "history": [{"question": "x" * 300_000, "answer": ""}]},
        413,
    ),
    ("chat-bad-json", CHAT, b"{not json", 400),
    ("chat-no-messages", CHAT, {"model": "rag"}, 400),
    ("chat-empty-messages", CHAT, {"model": "rag", "messages": []}, 400),
    ("chat-too-many-messages", CHAT, {"model": "rag", "messages": _msgs(51)}, 400),
    ("chat-model-int", CHAT, {**OK_CHAT, "model": 4}, 400),
    ("chat-model-unknown", CHAT, {**OK_CHAT, "model": "gpt-4o"}, 404),
    ("chat-content-int", CHAT, {"model": "rag", "messages": [{"role": "user", "content": 7}]}, 400),
    ("chat-role-unknown", CHAT, {"model": "rag", "messages": [{"role": "wizard", "content": RUSSIA}]}, 400),
    ("chat-last-not-user", CHAT, {"model": "rag", "messages": _msgs(2)}, 400),
    (
        "chat-image-part",
        CHAT,
        {"model": "rag", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        400,
    ),
    ("chat-question-empty", CHAT, {"model": "rag", "messages": [{"role": "user", "content": " "}]}, 400),
    ("chat-stream-string", CHAT, {**OK_CHAT, "stream": "true"}, 400),
    ("chat-k-out-of-range", CHAT, {**OK_CHAT, "k": 1000}, 400),
    ("chat-as-of-malformed", CHAT, {**OK_CHAT, "as_of": "31/12/2025"}, 400),
    ("chat-body-too-large", CHAT, {**OK_CHAT, "user": "x" * 300_000}, 413),
]


@pytest.mark.parametrize(("path", "body", "status"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_4xx_json_errors(api: Api, path: str, body: Any, status: int) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with api.client() as c:
        r = c.post(path, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"] and "Traceback" not in error["message"]
    if path == CHAT:
        assert "param" in error and "code" in error  # OpenAI's shape
    else:
        assert set(error) == {"type", "message"}


def test_body_limit_also_holds_without_content_length(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    with api.client() as c:
        r = c.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/v1/nothing", 404), ("DELETE", "/v1/ask", 405), ("GET", "/v1/ask", 405)]
)
def test_unknown_routes_and_methods_get_json_errors(api: Api, method: str, path: str, status: int) -> None:
    with api.client() as c:
        r = c.request(method, path)
    assert r.status_code == status and r.json()["error"]["message"]


def test_errors_and_logs_never_show_a_key(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    for key in (READ_KEY, ADMIN_KEY, READ_KEY + "x"):
        with api.client(key) as c:
            bodies.append(c.post("/v1/ask", content=b"{bad").text)
            bodies.append(c.get("/v1/admin/whoami").text)
    text = caplog.text + "".join(bodies)
    assert "DO-NOT-LEAK" not in text


# -- rag-llm through the API (only the chat model is faked) -------------------------------------------------
@pytest.fixture(scope="module")
def llm_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Any]]:
    from test_llm_unit import ScriptedChatModel, first_sentence, passages_in

    def script(prompt: str) -> str:
        passages = passages_in(prompt)
        if not passages:  # a follow-up rewrite: keep the question
            return prompt.strip().splitlines()[-1]
        last = max(passages)
        return f"{first_sentence(passages[last])} [{last}] {first_sentence(passages[1])} [1]"

    model = ScriptedChatModel(script=script, piece=4)
    root = tmp_path_factory.mktemp("api-llm")
    svc = RagService(make_settings(root / "data", llm_base_url="http://127.0.0.1:9/v1"), chat_model=model)
    svc.ingest([CORPUS])
    port = free_port()
    server = build_server(svc, "127.0.0.1", port, log_level="warning")
    thread = start_in_thread(server)
    yield Api(f"http://127.0.0.1:{port}", svc), model
    stop(server, thread)
    close(svc)


def test_rag_llm_streams_renumbered_verified_citations(llm_api: tuple[Api, Any]) -> None:
    api, _ = llm_api
    client = api.openai(key="no keys configured: any string")
    assert {m.id for m in client.models.list()} == {"rag", "rag-extractive", "rag-llm"}
    chunks = list(
        client.chat.completions.create(model="rag-llm", messages=[{"role": "user", "content": RUSSIA}], stream=True)
    )
    extra = chunks[-1].choices[0].delta.model_extra or {}
    assert extra["mode"] == "llm"
    assert [c["n"] for c in extra["citations"]] == [1, 2]  # renumbered by first use
    assert_cited(extra, api.service)
    assert all(s["supported"] for s in extra["sentences"])
    assert "[1]" in "".join(ch.choices[0].delta.content or "" for ch in chunks)


def test_model_failure_is_a_json_error_before_and_during_a_stream(llm_api: tuple[Api, Any]) -> None:
    from test_llm_unit import status_error

    api, model = llm_api
    client = api.openai(key="any")
    model.errors = [status_error(openai.NotFoundError, 404, "model 'x' not found")]
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="rag-llm", messages=[{"role": "user", "content": RUSSIA}])
    assert exc.value.status_code == 502 and exc.value.code == "model_error"
    model.errors, model.fail_after = [status_error(openai.NotFoundError, 404, "model 'x' not found")], 2
    try:
        stream = client.chat.completions.create(
            model="rag-llm", messages=[{"role": "user", "content": RUSSIA}], stream=True
        )
        with pytest.raises(openai.APIError, match="model"):
            list(stream)
    finally:
        model.errors, model.fail_after = [], 0
