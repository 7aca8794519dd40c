"""What routes depend on: the one service, the key ring, and role checks (bearer keys)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag import Answer, RagService
from rag.api.auth import ROLES, KeyRing, Principal, bearer_token
from rag.api.errors import ApiError
from rag.api.metrics import ApiMetrics

_bearer = HTTPBearer(auto_error=False, description="an API key from RAG_API_KEYS or RAG_API_KEY_FILE")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rag"'}


@dataclass
class ApiState:
    """Shared by every request of one app: built once, read concurrently."""

    service: RagService
    keys: KeyRing
    started: int
    metrics: ApiMetrics
    warm: bool = False


def state(request: Request) -> ApiState:
    st: ApiState = request.app.state.api
    return st


def require(role: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller's Principal, or 401 (no or wrong key) / 403 (role too low)."""
    assert role in ROLES

    async def check(
        request: Request, _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        keys = state(request).keys
        if not keys.enabled:
            return Principal(role="admin", anonymous=True)  # loopback only, enforced at bind time
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise ApiError(
                401,
                "Missing API key - send `Authorization: Bearer <key>`.",
                code="missing_api_key",
                headers=_CHALLENGE,
            )
        found = keys.role_of(token)
        if found is None:
            raise ApiError(401, "Invalid API key - check the key you sent.", code="invalid_api_key", headers=_CHALLENGE)
        principal = Principal(role=found)
        if not principal.allows(role):
            raise ApiError(403, f"This key has role {found}; this route needs role {role}.", code="forbidden")
        return principal

    return check


def service(request: Request) -> RagService:
    return state(request).service


def asked(request: Request, question: str) -> None:
    """Note the question for the request's log line (written only with RAG_API_DEBUG)."""
    request.state.question = question


def record(request: Request, answer: Answer) -> Answer:
    """Count an answer (mode, refusal, stage latencies) and note it for the request's log line."""
    state(request).metrics.observe_answer(answer)
    request.state.mode, request.state.refused = answer.mode, answer.refused
    return answer


def recorded(request: Request, events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Stream events passed through; the final answer is recorded as by record()."""
    for kind, value in events:
        if kind == "answer":
            record(request, value)
        yield kind, value
