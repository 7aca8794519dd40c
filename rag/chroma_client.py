"""Connecting to Chroma (embedded or a server) and turning what it raises into errors naming the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from rag.config import Settings
from rag.errors import RagIndexError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

T = TypeVar("T")


def connect(settings: Settings) -> ClientAPI:
    """A client of the Chroma server when one is set (bearer token, heartbeat checked), else of the embedded index."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        headers = {}
        if settings.chroma_token is not None:
            headers["Authorization"] = f"Bearer {settings.chroma_token.get_secret_value()}"
        client = chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, headers=headers, settings=chroma_settings
        )
        client.heartbeat()
        return client
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def is_connection_error(exc: BaseException) -> bool:
    """True when exc (or its cause) says the server could not be reached."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (httpx.TransportError, ConnectionError)) or "Could not connect" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_chroma_error(exc: BaseException) -> bool:
    """An error raised inside chromadb (InternalError "Error loading hnsw index", "Error getting embedding")."""
    return type(exc).__module__.startswith("chromadb") or "hnsw" in str(exc).lower()


def is_auth_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{seen.__class__.__name__} {seen}"
        if "Auth" in seen.__class__.__name__ or "401" in text or "403" in text or "Unauthorized" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def open_error(settings: Settings, exc: Exception) -> RagIndexError:
    """The index cannot be opened: the server refused or is unreachable, or the embedded index is broken."""
    if settings.chroma_host and is_auth_error(exc):
        return RagIndexError(
            f"The Chroma server at {settings.chroma_host}:{settings.chroma_port} refused the request "
            "(unauthorized) - set RAG_CHROMA_TOKEN to the token its auth proxy expects."
        )
    if settings.chroma_host:
        return RagIndexError(
            f"Cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} "
            f"({exc.__class__.__name__}) - start it (`chroma run --path DIR --port {settings.chroma_port}`) "
            "or unset RAG_CHROMA_HOST to use the embedded index."
        )
    return RagIndexError(
        f"The index in {settings.chroma_dir} cannot be opened ({exc.__class__.__name__}: {exc}) - "
        f"it may be corrupt: delete {settings.chroma_dir} and run `rag ingest` again."
    )


def damaged_error(settings: Settings, exc: BaseException) -> RagIndexError:
    """A store call that failed inside Chroma: name the index and the repair command."""
    return RagIndexError(
        f"The index in {settings.index_location} is damaged ({exc.__class__.__name__}: "
        f"{str(exc)[:160]}) - run `rag doctor --repair` to check and rebuild it from the stored articles."
    )


def call(settings: Settings, op: Callable[[], T]) -> T:
    """Run a Chroma call; a server that went away becomes a RagIndexError naming it."""
    try:
        return op()
    except RagIndexError:
        raise
    except Exception as exc:
        if settings.chroma_host and (is_connection_error(exc) or is_auth_error(exc)):
            raise open_error(settings, exc) from exc
        if is_chroma_error(exc):
            raise damaged_error(settings, exc) from exc
        raise
