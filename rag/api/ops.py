"""ASGI middleware around every request: rate limit, concurrency cap, timeout, metrics, one log line."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.auth import bearer_token
from rag.api.errors import ApiError, error_body
from rag.api.limits import Limits, TokenBuckets, caller_id, retry_after
from rag.api.metrics import ApiMetrics

access_log = logging.getLogger("rag.api.access")

# Health checks and scrapes are never throttled, capped or counted in flight: a load balancer must see them.
EXEMPT = ("/healthz", "/readyz", "/metrics")


class Ops:
    """The shared state of the middleware of one app (read by /metrics and by tests)."""

    def __init__(self, limits: Limits, metrics: ApiMetrics, routes: Sequence[BaseRoute], debug: bool = False) -> None:
        self.limits = limits
        self.metrics = metrics
        self.routes = routes  # the app's route list (filled after the middleware is added)
        self.debug = debug
        self.buckets = TokenBuckets(limits.rate_per_minute, limits.burst)
        self.in_flight = 0
        self._flat_routes: list[BaseRoute] | None = None
        metrics.in_flight.set_function(lambda: self.in_flight)

    def _flat(self) -> list[BaseRoute]:
        """The app's routes, with those of included routers (included without a prefix) in line."""
        if self._flat_routes is None:
            out: list[BaseRoute] = []
            stack = list(self.routes)
            while stack:
                route = stack.pop(0)
                inner = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
                if inner is not None:
                    stack[:0] = list(inner.routes)
                else:
                    out.append(route)
            self._flat_routes = out
        return self._flat_routes

    def route_of(self, scope: Scope) -> str:
        """The route template (e.g. /v1/articles/{article_id}), so that labels stay few; `unmatched` else."""
        partial = None
        for route in self._flat():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return _template(route)
            if match == Match.PARTIAL and partial is None:
                partial = _template(route)  # the path exists, the method does not
        return partial or "unmatched"


class OpsMiddleware:
    def __init__(self, app: ASGIApp, ops: Ops) -> None:
        self.app = app
        self.ops = ops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ops = self.ops
        t0 = time.perf_counter()
        path, method = scope["path"], scope["method"]
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        who = caller_id(
            bearer_token(headers.get(b"authorization", b"").decode("latin-1") or None), client[0] if client else None
        )
        route = ops.route_of(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 0
        reason = ""
        try:
            if path in EXEMPT or method == "OPTIONS":
                status = await self._forward(scope, receive, send)
                return
            wait = ops.buckets.take(who)
            if wait:
                reason, status = "rate_limited", 429
                await _reject(
                    send, path, 429, f"Rate limit of {ops.limits.rate_per_minute:g} requests a minute per key "
                    f"(burst {ops.limits.burst}) reached - retry after Retry-After seconds (RAG_API_RATE_PER_MINUTE).",
                    {"retry-after": retry_after(wait)}, code="rate_limited",
                )
                return
            if ops.in_flight >= ops.limits.max_concurrent:
                reason, status = "saturated", 503
                await _reject(
                    send, path, 503, f"The server is busy ({ops.in_flight} requests in progress, the limit of "
                    "RAG_API_MAX_CONCURRENT) - retry shortly.", {"retry-after": "1"}, code="overloaded",
                )
                return
            status, timed_out = await self._guarded(scope, receive, send)
            if timed_out:
                reason = "timeout"
        finally:
            elapsed = time.perf_counter() - t0
            ops.metrics.observe_request(route, method, status or 500, elapsed)
            if reason:
                ops.metrics.rejected.labels(reason).inc()
            self._log(method, route, path, status or 500, elapsed, who, state)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> int:
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, send_status)
        return status

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, bool]:
        """Run the request in a slot of the concurrency cap, with a timeout until its response starts.

        On timeout the client gets 504 at once; the work itself (a thread cannot be stopped) keeps its slot
        until it ends, so slow work piles up as 503s, never as a growing queue of threads.
        """
        ops = self.ops
        status = 0
        started = asyncio.Event()
        abandoned = False

        async def send_guarded(message: Message) -> None:
            nonlocal status
            if abandoned:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started.set()
            await send(message)

        ops.in_flight += 1
        task = asyncio.ensure_future(self.app(scope, receive, send_guarded))

        def release(t: asyncio.Future[None]) -> None:
            ops.in_flight -= 1
            if abandoned and not t.cancelled():
                t.exception()  # retrieved, so asyncio does not warn about it

        task.add_done_callback(release)
        waiter = asyncio.ensure_future(started.wait())
        try:
            await asyncio.wait({task, waiter}, timeout=ops.limits.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done() or started.is_set():
            await task  # the response is under way: streams run on (the LLM has its own timeouts)
            return status, False
        abandoned = True  # not cancelled: the task ends with its thread, and only then frees the slot
        await _reject(
            send, scope["path"], 504,
            f"No answer within {ops.limits.timeout_s:g} s (RAG_API_TIMEOUT_S) - retry, or ask a narrower question.",
            {}, code="timeout",
        )
        return 504, True

    def _log(self, method: str, route: str, path: str, status: int, seconds: float, who: str,
             state: dict[str, Any]) -> None:
        """One JSON line per request: never a key (a fingerprint), the question only with RAG_API_DEBUG."""
        if not access_log.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "method": method,
            "route": route,
            "path": path if route != "unmatched" else "-",
            "status": status,
            "ms": round(seconds * 1000, 1),
            "caller": who,
            "in_flight": self.ops.in_flight,
        }
        for k in ("mode", "refused"):
            if k in state:
                line[k] = state[k]
        if self.ops.debug and "question" in state:
            line["question"] = state["question"]
        access_log.info(json.dumps(line, ensure_ascii=False))


def _template(route: BaseRoute) -> str:
    """/v1/articles/{article_id}, without converters such as :path."""
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


async def _reject(send: Send, path: str, status: int, message: str, headers: dict[str, str], code: str) -> None:
    body = json.dumps(error_body(ApiError(status, message, code=code), path)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
