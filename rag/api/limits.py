"""Fair use: a token bucket per key, and the settings of the concurrency cap, timeout and CORS."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from rag import Settings

MAX_BUCKETS = 10_000  # distinct callers remembered; full (idle) buckets are dropped first


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """One bucket per caller: `burst` tokens, refilled at `per_minute / 60` a second; a request takes one.

    Used from the event loop only (one thread), so it needs no lock.
    """

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, who: str) -> float:
        """0 when the request may go ahead; otherwise the seconds until a token is free (for Retry-After)."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        b = self._buckets.get(who)
        if b is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            b = self._buckets[who] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for k in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[k]


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def caller_id(token: str | None, client_host: str | None) -> str:
    """Who a bucket belongs to: a fingerprint of the bearer key (never the key), else the client address."""
    if token:
        return "key:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]
    return "ip:" + (client_host or "unknown")


@dataclass(frozen=True)
class Limits:
    """The fair-use settings of one app."""

    rate_per_minute: float
    burst: int
    max_concurrent: int
    timeout_s: float
    cors_origins: tuple[str, ...]

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        origins = tuple(o.strip().rstrip("/") for o in (s.api_cors_origins or "").split(",") if o.strip())
        return cls(s.api_rate_per_minute, s.api_rate_burst, s.api_max_concurrent, s.api_timeout_s, origins)
