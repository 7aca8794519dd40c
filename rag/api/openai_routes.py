"""OpenAI-compatible routes: /v1/chat/completions (JSON or streamed chunks) and /v1/models."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag import Answer, ConfigError, RagError, RagService, Turn
from rag.api.deps import asked, record, recorded, require, service, state
from rag.api.errors import ApiError, error_body, from_rag_error, unexpected
from rag.api.schemas import ERRORS, ChatCompletion, ChatCompletionRequest, ChatMessage, ModelList

log = logging.getLogger("rag.api")
router = APIRouter(tags=["OpenAI-compatible"])

MODELS = {"rag": None, "rag-extractive": "extractive", "rag-llm": "llm"}  # model name -> answer mode
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PATH = "/v1/chat/completions"


def available_models(svc: RagService) -> list[str]:
    names = []
    for name, mode in MODELS.items():
        try:
            svc.resolve_mode(mode)
        except ConfigError:
            continue
        names.append(name)
    return names


@router.get("/v1/models", response_model=ModelList, responses=ERRORS, dependencies=[Depends(require("read"))])
async def list_models(request: Request) -> dict[str, Any]:
    """The answer modes as models: `rag` (auto), `rag-extractive`, and `rag-llm` when an LLM is configured."""
    names = await run_in_threadpool(available_models, service(request))
    created = state(request).started
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": created, "owned_by": "rag"} for n in names],
    }


def _text(msg: ChatMessage, i: int) -> str:
    if msg.content is None:
        return ""
    if isinstance(msg.content, str):
        return msg.content
    texts = []
    for part in msg.content:
        if part.type != "text" or part.text is None:
            raise ApiError(400, f"messages.{i}: only text content is supported.", param=f"messages.{i}.content")
        texts.append(part.text)
    return "\n".join(texts)


def to_question(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The last user message is the question; earlier user/assistant pairs are the history.

    System and developer messages are ignored: the answer's rules (cite every sentence, refuse when the
    articles do not answer) are the service's, not the caller's.
    """
    turns: list[Turn] = []
    pending: str | None = None
    chat = [(i, m) for i, m in enumerate(messages) if m.role in ("user", "assistant")]
    if not chat or chat[-1][1].role != "user":
        raise ApiError(400, "The last message must be the user's question (role user).", param="messages")
    for i, m in chat[:-1]:
        if m.role == "user":
            pending = _text(m, i)
        elif pending is not None:
            turns.append(Turn(question=pending, answer=_text(m, i)))
            pending = None
    i, last = chat[-1]
    return _text(last, i), turns


def _mode(svc: RagService, model: str) -> str | None:
    if model not in MODELS:
        raise ApiError(
            404,
            f"The model {model!r} does not exist - use one of {', '.join(MODELS)} (GET /v1/models).",
            param="model",
            code="model_not_found",
        )
    mode = MODELS[model]
    try:
        svc.resolve_mode(mode)
    except ConfigError as exc:
        raise ApiError(
            400,
            f"The model {model!r} is not available: {exc.user_message.replace('--mode extractive', 'rag-extractive')}",
            param="model",
            code="model_not_available",
        ) from exc
    return mode


def message_extras(answer: Answer) -> dict[str, Any]:
    d = answer.to_dict()
    return {
        "refused": answer.refused,
        "citations": d["citations"],
        "sentences": d["sentences"],
        "standalone_question": answer.standalone_question,
        "mode": answer.mode,
    }


def _completion(cid: str, created: int, model: str, answer: Answer) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer.answer, "refusal": None, **message_extras(answer)}
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
    }


def _chunks(cid: str, created: int, model: str, events: Iterator[tuple[str, Any]]) -> Iterator[str]:
    """OpenAI stream chunks; the last one before [DONE] carries the citations and sentences on its delta."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for kind, value in events:
            if kind == "text" and value:
                yield chunk({"content": value})
            elif kind == "answer":
                yield chunk({"answer": value.answer, **message_extras(value)}, finish="stop")
    except RagError as exc:
        yield f"data: {json.dumps(error_body(from_rag_error(exc), PATH))}\n\n"
        return
    except Exception as exc:
        yield f"data: {json.dumps(error_body(unexpected(exc), PATH))}\n\n"
        return
    yield "data: [DONE]\n\n"


@router.post(
    PATH,
    response_model=ChatCompletion,
    responses={**ERRORS, 404: {"description": "unknown model"}},
    dependencies=[Depends(require("read"))],
)
async def chat_completions(request: Request, body: ChatCompletionRequest) -> Any:
    """Answer the last user message from the articles. With `stream: true`, OpenAI chunks (SSE), then `[DONE]`.

    The message carries `refused`, `citations` and `sentences` (in streaming: the final chunk's delta).
    """
    svc = service(request)
    limit = svc.settings.api_max_messages
    if len(body.messages) > limit:
        raise ApiError(400, f"{len(body.messages)} messages, over the limit of {limit}.", param="messages")
    mode = await run_in_threadpool(_mode, svc, body.model)
    question, history = to_question(body.messages)
    asked(request, question)
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        events = await run_in_threadpool(
            partial(svc.stream, question, history, body.k, mode, since=body.since, until=body.until, as_of=body.as_of)
        )
        return StreamingResponse(
            _chunks(cid, created, body.model, recorded(request, events)),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    answer = await run_in_threadpool(
        partial(svc.ask, question, history, k=body.k, mode=mode, since=body.since, until=body.until, as_of=body.as_of)
    )
    return JSONResponse(_completion(cid, created, body.model, record(request, answer)))
