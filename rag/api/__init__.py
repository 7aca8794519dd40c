"""The HTTP API (`rag serve`): /v1/ask, OpenAI-compatible /v1/chat/completions, articles, metrics, keys and limits."""

from __future__ import annotations

from rag.api.app import create_app, warm_up
from rag.api.auth import KeyRing, Principal, check_bind, key_digest
from rag.api.server import build_server, start_in_thread, stop

__all__ = [
    "KeyRing",
    "Principal",
    "build_server",
    "check_bind",
    "create_app",
    "key_digest",
    "start_in_thread",
    "stop",
    "warm_up",
]
