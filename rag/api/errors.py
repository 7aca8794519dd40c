"""Every API error as JSON `{"error": {"type", "message"}}` (OpenAI's shape on its routes); never a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import AnswerFormatError, ConfigError, ModelError, QuestionError, RagError, RagIndexError

log = logging.getLogger("rag.api")

OPENAI_PREFIXES = ("/v1/chat/completions", "/v1/models")
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ApiError(Exception):
    """An error the API answers on purpose: status, OpenAI-style type, message, and optional param/code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPES.get(status, "invalid_request_error")
        self.param = param
        self.code = code
        self.headers = headers


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIXES)


def error_body(err: ApiError, path: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": err.type, "message": err.message}
    if is_openai_path(path):
        body.update(param=err.param, code=err.code)
    return {"error": body}


def error_response(err: ApiError, path: str) -> JSONResponse:
    return JSONResponse(error_body(err, path), status_code=err.status, headers=err.headers)


def from_rag_error(exc: RagError) -> ApiError:
    """A library error as an HTTP status: the caller's fault (4xx) or the index's or model's (5xx)."""
    if isinstance(exc, QuestionError):
        return ApiError(400, exc.user_message, param="messages")
    if isinstance(exc, ConfigError):
        return ApiError(400, exc.user_message)
    if isinstance(exc, RagIndexError):
        return ApiError(503, exc.user_message, code="index_unavailable")
    if isinstance(exc, ModelError | AnswerFormatError):
        retry = isinstance(exc, ModelError) and exc.is_retryable
        return ApiError(503 if retry else 502, exc.user_message, code="model_error")
    return ApiError(500, exc.user_message)


def unexpected(exc: BaseException) -> ApiError:
    log.error("unexpected %s in a request", exc.__class__.__name__, exc_info=exc)
    return ApiError(500, f"Unexpected {exc.__class__.__name__} - see the server log, and report it.")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """What was wrong, by field; never the submitted values (they may be long or secret)."""
    parts: list[str] = []
    param: str | None = None
    for e in exc.errors()[:3]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc)
        if e.get("type") == "json_invalid":
            return "The body is not valid JSON - send a JSON object with Content-Type: application/json.", None
        if param is None and where:
            param = where
        parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
    return "Invalid request - " + "; ".join(parts) + ".", param


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
        return error_response(from_rag_error(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(ApiError(400, message, param=param), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path} - see /docs for the API."
        return error_response(ApiError(exc.status_code, message), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(unexpected(exc), request.url.path)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before any route reads it.

    The body (small by construction) is buffered and replayed, so a chunked upload without
    Content-Length is limited too; after the body, `receive` passes through (disconnects).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads or {}  # path -> its own limit (multipart uploads: RAG_MAX_UPLOAD_MB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._reject(scope, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected while sending
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        if scope.get("path") in self.uploads:
            message = f"The upload is over the limit of {limit / 2**20:.0f} MB per request (RAG_MAX_UPLOAD_MB)."
        else:
            message = f"The request body is over the limit of {limit} bytes (RAG_API_MAX_REQUEST_BYTES)."
        err = ApiError(413, message)
        payload = json.dumps(error_body(err, scope.get("path", ""))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
