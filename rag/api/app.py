"""The ASGI app: /v1/ask (JSON or SSE), the OpenAI routes, health, readiness, articles, whoami."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag import RagError, RagService, Turn
from rag.api import articles, openai_routes
from rag.api.auth import KeyRing, Principal
from rag.api.deps import ApiState, asked, record, recorded, require, service, state
from rag.api.errors import ApiError, BodyLimit, error_body, from_rag_error, install_handlers, unexpected
from rag.api.limits import Limits
from rag.api.metrics import CONTENT_TYPE, ApiMetrics
from rag.api.ops import Ops, OpsMiddleware
from rag.api.schemas import ERRORS, AnswerOut, AskRequest

DESCRIPTION = """Cited answers from a folder of news articles.

Every answer sentence is copied from (extractive) or checked against (LLM) a retrieved passage and carries
`[n]`; each citation holds the verbatim quote with its character offsets in the article. Send
`Authorization: Bearer <key>` (keys from RAG_API_KEYS or RAG_API_KEY_FILE; with none the server listens on
loopback only and needs no key). Errors are JSON: `{"error": {"type", "message"}}`.
"""


def warm_up(svc: RagService) -> None:
    """Load the embedding model and open the index before serving, so the first request is warm.

    Raises RagError when the index cannot be opened (e.g. another process owns the data dir);
    an empty index is not an error here: /readyz says so until `rag ingest` has run.
    """
    svc.warm_up()


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def ask_events(events: Iterator[tuple[str, Any]]) -> Iterator[str]:
    """The service's events as SSE: `step` {name, ms}, `text` {text}, then `answer` (or `error`)."""
    try:
        for kind, value in events:
            if kind == "step":
                yield _sse("step", {"name": value[0], "ms": round(value[1], 2)})
            elif kind == "text":
                yield _sse("text", {"text": value})
            elif kind == "answer":
                yield _sse("answer", value.to_dict())
    except RagError as exc:
        yield _sse("error", error_body(from_rag_error(exc), "/v1/ask"))
    except Exception as exc:
        yield _sse("error", error_body(unexpected(exc), "/v1/ask"))


def create_app(svc: RagService, keys: KeyRing | None = None, *, warm: bool = True) -> FastAPI:
    """One app around one service. `warm`: the caller has run warm_up (else /readyz warms on first call)."""
    settings = svc.settings
    app = FastAPI(
        title="News RAG API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=[{"name": n} for n in ("answers", "OpenAI-compatible", "articles", "operations")],
    )
    metrics = ApiMetrics(svc)
    app.state.api = ApiState(
        service=svc,
        keys=keys if keys is not None else KeyRing.from_settings(settings),
        started=int(time.time()),
        metrics=metrics,
        warm=warm,
    )
    limits = Limits.from_settings(settings)
    app.state.ops = Ops(limits, metrics, app.router.routes, debug=settings.api_debug)
    # outermost last: CORS (when configured), then fair use, metrics and the log line, then the body limit
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.api_max_request_bytes,
        uploads={articles.PATH: articles.upload_body_limit(settings.max_upload_mb)},
    )
    app.add_middleware(OpsMiddleware, ops=app.state.ops)
    if limits.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(limits.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    install_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(articles.router)

    @app.post(
        "/v1/ask",
        tags=["answers"],
        response_model=AnswerOut,
        responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "the answer object"}},
        dependencies=[Depends(require("read"))],
    )
    async def ask(request: Request, body: AskRequest) -> Any:
        """Answer a question: the answer object of the contracts, or with `stream: true` server-sent events
        (`step`, `text` pieces, then `answer` with the whole object; `error` if it fails midway)."""
        svc = service(request)
        asked(request, body.question)
        if len(body.history) > svc.settings.api_max_messages:
            raise ApiError(
                400, f"{len(body.history)} history turns, over the limit of {svc.settings.api_max_messages}."
            )
        history = [Turn(t.question, t.answer, t.standalone_question) for t in body.history]
        if body.stream:
            events = await run_in_threadpool(
                partial(
                    svc.stream,
                    body.question,
                    history,
                    body.k,
                    body.mode,
                    since=body.since,
                    until=body.until,
                    as_of=body.as_of,
                )
            )
            return StreamingResponse(
                ask_events(recorded(request, events)), media_type="text/event-stream", headers=openai_routes.SSE_HEADERS
            )
        answer = await run_in_threadpool(
            partial(
                svc.ask,
                body.question,
                history,
                k=body.k,
                mode=body.mode,
                since=body.since,
                until=body.until,
                as_of=body.as_of,
            )
        )
        return JSONResponse(record(request, answer).to_dict())

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
    async def metrics_route(request: Request) -> Response:
        """Prometheus metrics of this instance (no key needed; keep the route internal at the proxy)."""
        return Response(await run_in_threadpool(state(request).metrics.render), media_type=CONTENT_TYPE)

    @app.get("/v1/admin/whoami", tags=["operations"], responses=ERRORS)
    async def whoami(principal: Annotated[Principal, Depends(require("admin"))]) -> dict[str, Any]:
        """An admin-only check: the caller's role."""
        return {"role": principal.role, "anonymous": principal.anonymous}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive (no key needed)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready: why, and what to do"}})
    async def readyz(request: Request) -> JSONResponse:
        """The index is open and holds articles, and the embedding model is loaded (no key needed)."""
        st: ApiState = state(request)
        try:
            if not st.warm:
                await run_in_threadpool(warm_up, st.service)
                st.warm = True
            stats = await run_in_threadpool(st.service.stats)
        except RagError as exc:
            return JSONResponse({"status": "not_ready", **error_body(from_rag_error(exc), "/readyz")}, 503)
        if not stats.get("chunks"):
            message = f"No index in {stats.get('index')} - run `rag ingest corpus/` first."
            return JSONResponse(
                {"status": "not_ready", "error": {"type": "service_unavailable", "message": message}}, 503
            )
        return JSONResponse({"status": "ready", **{k: stats[k] for k in ("articles", "chunks", "mode")}})

    return app
