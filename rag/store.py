"""The only module that talks to Chroma: chunks, an article registry, dense search."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import RagIndexError
from rag.types import Article, Chunk, Passage

ARTICLE_FIELDS = ("title", "title_derived", "source", "published", "url", "author", "source_path", "content_hash")


def _pack(vecs: np.ndarray) -> str:
    return base64.b64encode(np.clip(np.round(vecs * 127), -127, 127).astype(np.int8).tobytes()).decode()


def _unpack(s: str, dim: int) -> np.ndarray:
    arr = np.frombuffer(base64.b64decode(s), dtype=np.int8).astype(np.float32) / 127.0
    return arr.reshape(-1, dim)


class ChromaStore:
    """Chunks (with embeddings) in one collection, whole articles in a second one."""

    def __init__(self, settings: Settings, model_name: str, dimension: int) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.settings = settings
        self.model_name = model_name
        self.dimension = dimension
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if settings.chroma_host:
                headers = {}
                if settings.chroma_token is not None:
                    headers["Authorization"] = f"Bearer {settings.chroma_token.get_secret_value()}"
                self._client = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, headers=headers, settings=chroma_settings
                )
                self._client.heartbeat()
            else:
                self._client = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
        except Exception as exc:  # chromadb raises many kinds; all mean "cannot open"
            raise self._open_error(exc) from exc
        self._chunks: Any = None
        self._articles: Any = None

    def _open_error(self, exc: Exception) -> RagIndexError:
        if self.settings.chroma_host:
            return RagIndexError(
                f"Cannot reach the Chroma server at {self.settings.chroma_host}:{self.settings.chroma_port} "
                f"({exc.__class__.__name__}) - start it (`chroma run --path DIR --port {self.settings.chroma_port}`) "
                "or unset RAG_CHROMA_HOST to use the embedded index."
            )
        return RagIndexError(
            f"The index in {self.settings.chroma_dir} cannot be opened ({exc.__class__.__name__}: {exc}) - "
            f"it may be corrupt: delete {self.settings.chroma_dir} and run `rag ingest` again."
        )

    # -- collections ----------------------------------------------------------
    def _names(self) -> tuple[str, str]:
        return self.settings.collection, f"{self.settings.collection}-articles"

    def open(self, create: bool) -> None:
        """Open (or create) the collections; raise a clear error if missing or mismatched."""
        if self._chunks is not None:
            return
        chunks_name, articles_name = self._names()
        try:
            if create:
                self._chunks = self._client.get_or_create_collection(
                    chunks_name,
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedding_model": self.model_name, "dimension": self.dimension},
                )
                self._articles = self._client.get_or_create_collection(
                    articles_name, embedding_function=None, metadata={"revision": uuid.uuid4().hex}
                )
            else:
                existing = {c if isinstance(c, str) else c.name for c in self._client.list_collections()}
                if chunks_name not in existing or articles_name not in existing:
                    raise RagIndexError(f"No index in {self.settings.index_location} - run `rag ingest corpus/` first.")
                self._chunks = self._client.get_collection(chunks_name, embedding_function=None)
                self._articles = self._client.get_collection(articles_name, embedding_function=None)
        except RagIndexError:
            raise
        except Exception as exc:
            raise self._open_error(exc) from exc
        built_with = (self._chunks.metadata or {}).get("embedding_model")
        if built_with != self.model_name:
            self._chunks = self._articles = None
            raise RagIndexError(
                f"The index in {self.settings.index_location} was built with the embedding model "
                f"{built_with!r}, not {self.model_name!r} - delete it and run `rag ingest` again."
            )

    @property
    def chunks(self) -> Any:
        if self._chunks is None:
            self.open(create=False)
        return self._chunks

    @property
    def articles(self) -> Any:
        if self._articles is None:
            self.open(create=False)
        return self._articles

    def exists(self) -> bool:
        """Whether the index has been created (a mismatched or broken one still raises on open)."""
        if self._chunks is not None:
            return True
        try:
            existing = {c if isinstance(c, str) else c.name for c in self._client.list_collections()}
        except Exception as exc:
            raise self._open_error(exc) from exc
        return all(n in existing for n in self._names())

    # -- revision: bumped on every change so BM25 caches know they are stale --
    def revision(self) -> str:
        return str((self.articles.metadata or {}).get("revision", ""))

    def bump_revision(self) -> None:
        self.articles.modify(metadata={"revision": uuid.uuid4().hex})

    # -- writes ------------------------------------------------------------------
    def add_article(
        self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray, sentence_vectors: Sequence[np.ndarray]
    ) -> None:
        """Replace an article's chunks; the article record is written last (a commit marker)."""
        self.delete_article(article.article_id, registry=False)
        base = {k: v for k, v in asdict(article).items() if k in ARTICLE_FIELDS}
        metas = []
        for c, sv in zip(chunks, sentence_vectors, strict=True):
            metas.append(
                {
                    **base,
                    "article_id": article.article_id,
                    "index": c.index,
                    "start": c.start,
                    "end": c.end,
                    "sents": json.dumps([list(s) for s in c.sentences]),
                    "svec": _pack(sv) if len(sv) else "",
                }
            )
        if chunks:
            self.chunks.upsert(
                ids=[c.chunk_id for c in chunks],
                embeddings=vectors,
                documents=[c.text for c in chunks],
                metadatas=metas,
            )
        self.articles.upsert(
            ids=[article.article_id],
            embeddings=[[1.0]],
            documents=[article.text],
            metadatas=[{**base, "chunks": len(chunks)}],
        )

    def delete_article(self, article_id: str, registry: bool = True) -> int:
        got = self.chunks.get(where={"article_id": article_id}, include=[])
        if got["ids"]:
            self.chunks.delete(ids=got["ids"])
        if registry:
            self.articles.delete(ids=[article_id])
        return len(got["ids"])

    # -- reads -------------------------------------------------------------------
    def count(self) -> int:
        return int(self.chunks.count())

    def article_count(self) -> int:
        return int(self.articles.count())

    def article_index(self) -> dict[str, dict[str, Any]]:
        """article_id -> metadata of every registered article (paged)."""
        out: dict[str, dict[str, Any]] = {}
        total = self.articles.count()
        for offset in range(0, total, 5000):
            got = self.articles.get(include=["metadatas"], limit=5000, offset=offset)
            out.update(zip(got["ids"], got["metadatas"], strict=True))
        return out

    def get_article(self, article_id: str) -> Article | None:
        got = self.articles.get(ids=[article_id], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]
        return Article(article_id=article_id, text=got["documents"][0], **{k: meta.get(k, "") for k in ARTICLE_FIELDS})

    def iter_chunk_texts(self, batch: int = 5000) -> Iterator[tuple[list[str], list[str]]]:
        total = self.chunks.count()
        for offset in range(0, total, batch):
            got = self.chunks.get(include=["documents"], limit=batch, offset=offset)
            yield got["ids"], got["documents"]

    def _passages(self, ids: list[str], docs: list[str], metas: list[dict[str, Any]]) -> list[Passage]:
        out = []
        for cid, doc, meta in zip(ids, docs, metas, strict=True):
            svec = meta.get("svec") or ""
            out.append(
                Passage(
                    chunk_id=cid,
                    article_id=str(meta["article_id"]),
                    text=doc,
                    start=int(meta["start"]),
                    end=int(meta["end"]),
                    sentences=[tuple(s) for s in json.loads(meta.get("sents") or "[]")],  # type: ignore[misc]
                    metadata={k: v for k, v in meta.items() if k not in ("svec", "sents")},
                    sentence_vectors=_unpack(svec, self.dimension) if svec else None,
                )
            )
        return out

    def dense_search(self, vector: np.ndarray, n: int) -> list[Passage]:
        n = min(n, self.count())
        if n <= 0:
            return []
        res = self.chunks.query(
            query_embeddings=[vector.tolist()], n_results=n, include=["documents", "metadatas", "distances"]
        )
        passages = self._passages(res["ids"][0], res["documents"][0], res["metadatas"][0])
        for rank, (p, d) in enumerate(zip(passages, res["distances"][0], strict=True)):
            p.dense_score = 1.0 - float(d)
            p.dense_rank = rank
        return passages

    def get_passages(self, ids: list[str]) -> list[Passage]:
        if not ids:
            return []
        got = self.chunks.get(ids=ids, include=["documents", "metadatas"])
        by_id = {p.chunk_id: p for p in self._passages(got["ids"], got["documents"], got["metadatas"])}
        return [by_id[i] for i in ids if i in by_id]

    def get_embeddings(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self.chunks.get(ids=ids, include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"], strict=True)}
