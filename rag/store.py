"""The only module that talks to Chroma: chunks, an article registry, dense search."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from rag import owner
from rag.chroma_client import call, connect, damaged_error, open_error
from rag.chroma_records import (
    chunk_metas,
    dated,
    header_problem,
    is_current,
    pack,
    registry_meta,
    to_article,
    to_passages,
    where_in,
)
from rag.config import Settings
from rag.errors import RagIndexError
from rag.memory import release_free_memory
from rag.types import Article, Chunk, Passage

T = TypeVar("T")

# What a chunk collection holds, stored in its metadata at creation. 1: before the field (no duplicate
# clusters); 2: articles carry a MinHash signature and every chunk and article its cluster (dup_of, dup_n).
SCHEMA_VERSION = 2


class ChromaStore:
    """Chunks (with embeddings) in one collection, whole articles in a second one."""

    def __init__(self, settings: Settings, model_name: str, dimension: int, client: Any = None) -> None:
        """client: an already made chromadb client (ClientAPI) instead of one connected from settings; the
        caller then owns it (no data-dir lock is taken for it)."""
        self.settings = settings
        self.model_name = model_name
        self.dimension = dimension
        # An embedded index is owned by one process: two writers (or a reader beside a writer) were seen
        # to corrupt it. A Chroma server serialises access itself.
        self._owner = None if settings.chroma_host or client is not None else owner.acquire(settings.data_dir)
        if self._owner is not None:  # a store dropped without close() gives its use back when collected
            self._release = weakref.finalize(self, owner.release, self._owner)
        try:
            self._client = client if client is not None else connect(settings)
        except Exception as exc:  # chromadb raises many kinds; all mean "cannot open"
            self.close()
            raise open_error(settings, exc) from exc
        self._chunks: Any = None
        self._articles: Any = None
        self.embed_header = "title" if settings.embed_title_header else "none"  # what chunk vectors are read with
        self.schema_version = SCHEMA_VERSION  # of the opened index: 1 when it predates duplicate clusters

    def close(self) -> None:
        """Give up ownership of an embedded index (another process may open it afterwards)."""
        if self._owner is not None:
            self._release()
            self._owner = None

    def damaged(self, exc: BaseException) -> RagIndexError:
        """A store call that failed inside Chroma: name the index and the repair command."""
        return damaged_error(self.settings, exc)

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
                    metadata={
                        "embedding_model": self.model_name,
                        "dimension": self.dimension,
                        "schema_version": SCHEMA_VERSION,  # only a new collection takes it (get_or_create)
                        "embed_header": self.embed_header,
                    },
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
            raise open_error(self.settings, exc) from exc
        built_with = (self._chunks.metadata or {}).get("embedding_model")
        if built_with != self.model_name:
            self._chunks = self._articles = None
            raise RagIndexError(
                f"The index in {self.settings.index_location} was built with the embedding model "
                f"{built_with!r}, not {self.model_name!r} - delete it and run `rag ingest` again."
            )
        self.schema_version = int((self._chunks.metadata or {}).get("schema_version", 1))
        if self.schema_version > SCHEMA_VERSION:
            self._chunks = self._articles = None
            raise RagIndexError(
                f"The index in {self.settings.index_location} was built by a newer version of this app (index "
                f"schema {self.schema_version}; this version reads up to {SCHEMA_VERSION}) - upgrade the app, "
                "or delete the index and run `rag ingest` again."
            )
        problem = header_problem(str((self._chunks.metadata or {}).get("embed_header", "none")), self.embed_header)
        if problem:
            self._chunks = self._articles = None
            raise RagIndexError(f"The index in {self.settings.index_location} {problem}")

    def set_schema_version(self, version: int) -> None:
        """Mark the chunk collection as holding what schema `version` stores (after an in-place upgrade)."""
        self._set_chunks_meta(schema_version=version)
        self.schema_version = version

    def set_embed_header(self, header: str) -> None:
        """Record what the chunk vectors are read with ("rebuilding" while `rag ingest --rebuild` runs)."""
        self._set_chunks_meta(embed_header=header)

    def _set_chunks_meta(self, **fields: Any) -> None:
        meta = {**(self.chunks.metadata or {}), **fields}
        self._try(lambda: self.chunks.modify(metadata=meta))

    @property
    def chunks(self) -> Any:
        if self._chunks is None:
            self.open(create=False)
        return self._chunks

    @property
    def chunks_id(self) -> str:
        """The chunk collection's id: a new one whenever the collection is made anew (`rag ingest --rebuild`)."""
        return str(self.chunks.id)

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
            raise open_error(self.settings, exc) from exc
        return all(n in existing for n in self._names())

    # -- revision: bumped on every change so BM25 caches know they are stale --
    def revision(self) -> str:
        """The current revision, read from Chroma (another process may have changed the index)."""
        self.open(create=False)
        fresh = self._try(lambda: self._client.get_collection(self._names()[1], embedding_function=None))
        if self.schema_version < SCHEMA_VERSION:  # another process may have upgraded the index in place since
            chunks = self._try(lambda: self._client.get_collection(self._names()[0], embedding_function=None))
            self.schema_version = min(SCHEMA_VERSION, int((chunks.metadata or {}).get("schema_version", 1)))
        return str((fresh.metadata or {}).get("revision", ""))

    def bump_revision(self) -> None:
        self._try(lambda: self.articles.modify(metadata={"revision": uuid.uuid4().hex}))

    # -- writes ------------------------------------------------------------------
    def max_batch(self) -> int:
        try:
            return max(1, int(self._client.get_max_batch_size()))
        except Exception:  # older servers do not report it
            return 1000

    def add_articles(
        self,
        items: Sequence[tuple[Article, Sequence[Chunk]]],
        vectors: np.ndarray,
        sentence_vectors: Sequence[np.ndarray],
    ) -> None:
        """Replace the chunks of a batch of articles; their registry records are written last.

        A registry record is the commit marker: an ingest killed before it leaves chunks that the next
        ingest replaces (their article is not registered, so it is ingested again; chunk ids are stable).
        """
        if not items:
            return
        ids = [a.article_id for a, _ in items]
        self._try(lambda: self.chunks.delete(where=where_in("article_id", ids)))
        chunk_ids = [c.chunk_id for _, chunks in items for c in chunks]
        docs = [c.text for _, chunks in items for c in chunks]
        metas = [m for article, chunks in items for m in chunk_metas(article, chunks)]
        for m, sv in zip(metas, sentence_vectors, strict=True):
            m["svec"] = pack(sv) if len(sv) else ""
        step = self.max_batch()
        for i in range(0, len(chunk_ids), step):
            sl = slice(i, i + step)
            self._try(
                lambda sl=sl: self.chunks.upsert(  # type: ignore[misc]
                    ids=chunk_ids[sl], embeddings=vectors[sl], documents=docs[sl], metadatas=metas[sl]
                )
            )
        self._try(
            lambda: self.articles.upsert(
                ids=ids,
                embeddings=[[1.0]] * len(ids),
                documents=[a.text for a, _ in items],
                metadatas=[registry_meta(a, len(cs)) for a, cs in items],
            )
        )

    def add_article(
        self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray, sentence_vectors: Sequence[np.ndarray]
    ) -> None:
        """Replace one article's chunks; the article record is written last (a commit marker)."""
        self.add_articles([(article, chunks)], vectors, sentence_vectors)

    def _try(self, op: Callable[[], T]) -> T:
        """Run a Chroma call; a server that went away becomes a RagIndexError naming it."""
        return call(self.settings, op)

    def delete_article(self, article_id: str, registry: bool = True) -> int:
        got = self._try(lambda: self.chunks.get(where={"article_id": article_id}, include=[]))
        if got["ids"]:
            self._try(lambda: self.chunks.delete(ids=got["ids"]))
        if registry:
            self._try(lambda: self.articles.delete(ids=[article_id]))
        return len(got["ids"])

    def set_dates(self, articles: Sequence[Article]) -> None:
        """Write published / published_day of already-stored articles (registry and chunks), no re-embedding.

        Upgrades articles stored before dates were; the registry record is written last, as in add_articles.
        """
        if not articles:
            return
        ids = [a.article_id for a in articles]
        by_id = {a.article_id: a for a in articles}
        got = self._try(lambda: self.chunks.get(where=where_in("article_id", ids), include=["metadatas"]))
        metas = [dated(m, by_id[str(m["article_id"])]) for m in got["metadatas"]]
        step = self.max_batch()
        for i in range(0, len(got["ids"]), step):
            sl = slice(i, i + step)
            self._try(lambda sl=sl: self.chunks.update(ids=got["ids"][sl], metadatas=metas[sl]))  # type: ignore[misc]
        reg = self._try(lambda: self.articles.get(ids=ids, include=["metadatas"]))
        self._try(
            lambda: self.articles.update(
                ids=reg["ids"],
                metadatas=[dated(m, by_id[i]) for i, m in zip(reg["ids"], reg["metadatas"], strict=True)],
            )
        )

    def set_article_fields(self, fields: dict[str, dict[str, Any]]) -> None:
        """Merge metadata fields into registry records (article_id -> fields); chunks are not touched."""
        ids = list(fields)
        step = self.max_batch()
        for i in range(0, len(ids), step):
            part = ids[i : i + step]
            self._try(lambda part=part: self.articles.update(ids=part, metadatas=[fields[a] for a in part]))  # type: ignore[misc]

    def set_clusters(self, clusters: dict[str, dict[str, Any]]) -> None:
        """Write dup_of / dup_n (article_id -> fields) to the articles' chunks, then to their registry records."""
        ids = list(clusters)
        step = self.max_batch()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            where = {"article_id": {"$in": part}}
            got = self._try(lambda where=where: self.chunks.get(where=where, include=["metadatas"]))  # type: ignore[misc]
            chunk_ids = list(got["ids"])
            metas = [clusters[str(m["article_id"])] for m in got["metadatas"]]
            for j in range(0, len(chunk_ids), step):
                sl = slice(j, j + step)
                self._try(lambda sl=sl, ids=chunk_ids, ms=metas: self.chunks.update(ids=ids[sl], metadatas=ms[sl]))  # type: ignore[misc]
        self.set_article_fields(clusters)

    def cluster_members(self, heads: Sequence[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """canonical article_id -> [(article_id, registry metadata)] of every article in its cluster."""
        if not heads:
            return {}
        got = self._try(lambda: self.articles.get(where=where_in("dup_of", heads), include=["metadatas"]))
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for aid, m in zip(got["ids"], got["metadatas"], strict=True):
            out.setdefault(str(m.get("dup_of")), []).append((aid, m))
        return out

    # -- reads -------------------------------------------------------------------
    def count(self) -> int:
        return int(self._try(lambda: self.chunks.count()))

    def article_count(self) -> int:
        return int(self._try(lambda: self.articles.count()))

    def article_index(self) -> dict[str, dict[str, Any]]:
        """article_id -> metadata of every registered article (paged)."""
        out: dict[str, dict[str, Any]] = {}
        total = self.article_count()
        for offset in range(0, total, 5000):
            got = self._try(lambda offset=offset: self.articles.get(include=["metadatas"], limit=5000, offset=offset))  # type: ignore[misc]
            out.update(zip(got["ids"], got["metadatas"], strict=True))
            release_free_memory()  # what Chroma allocated for the page (rag.memory)
        return out

    def get_article(self, article_id: str) -> Article | None:
        got = self._try(lambda: self.articles.get(ids=[article_id], include=["metadatas", "documents"]))
        if not got["ids"]:
            return None
        return to_article(article_id, got["documents"][0], got["metadatas"][0])

    def iter_chunks(self, field: str | None, batch: int = 5000) -> Iterator[tuple[list[str], list[Any]]]:
        """Every chunk's id and one stored field ("documents" or "metadatas"; None: ids only), a page at a time."""
        include = [field] if field else []
        for offset in range(0, self.count(), batch):
            got = self._try(lambda offset=offset: self.chunks.get(include=include, limit=batch, offset=offset))  # type: ignore[misc]
            release_free_memory()
            yield list(got["ids"]), (got[field] if field else [])

    def documents_of(self, ids: Sequence[str]) -> dict[str, str]:
        """chunk id -> text for these chunks (those still stored), in pages the store accepts."""
        out: dict[str, str] = {}
        step = self.max_batch()
        for i in range(0, len(ids), step):
            got = self._try(lambda i=i: self.chunks.get(ids=list(ids[i : i + step]), include=["documents"]))  # type: ignore[misc]
            out.update(zip(got["ids"], got["documents"], strict=True))
        return out

    def probe_vectors(self) -> None:
        """A cheap health check of the vector index: one nearest-neighbour query and a page of stored
        vectors (a truncated or half-written HNSW file fails the second with "Error getting embedding")."""
        vec = np.full(self.dimension, 1.0 / np.sqrt(self.dimension), dtype=np.float32)
        self._try(lambda: self.chunks.query(query_embeddings=[vec.tolist()], n_results=1, include=[]))
        self._try(lambda: self.chunks.get(limit=100, include=["embeddings"]))

    def delete_chunks(self, ids: Sequence[str]) -> None:
        step = self.max_batch()
        for i in range(0, len(ids), step):
            self._try(lambda i=i: self.chunks.delete(ids=list(ids[i : i + step])))  # type: ignore[misc]

    def reset_chunks(self) -> None:
        """Drop the chunk collection (its vector index is damaged) and create it empty; the registry stays."""
        chunks_name = self._names()[0]
        try:
            self._client.delete_collection(chunks_name)
        except Exception as exc:  # a collection too damaged to delete cleanly is still gone from the catalogue
            if chunks_name in {c if isinstance(c, str) else c.name for c in self._client.list_collections()}:
                raise self.damaged(exc) from exc
        self._chunks = self._articles = None
        self.open(create=True)

    def chunk_texts_of(self, article_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """Ids and texts of the chunks of these articles (the BM25 delta segment reads them)."""
        if not article_ids:
            return [], []
        got = self._try(lambda: self.chunks.get(where=where_in("article_id", article_ids), include=["documents"]))
        return list(got["ids"]), list(got["documents"])

    def nearest_ids(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The n nearest chunks' ids and cosine distances, without their payload (a cheap wide first look)."""
        n = min(n, self.count())
        if n <= 0:
            return []
        res = self._try(
            lambda: self.chunks.query(query_embeddings=[vector.tolist()], n_results=n, include=["distances"])
        )
        return [(str(i), float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    def dense_search(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[Passage]:
        """The n nearest chunks; `where` (a Chroma metadata filter, e.g. on published_day) narrows them first."""
        n = min(n, self.count())
        if n <= 0:
            return []
        res = self._try(
            lambda: self.chunks.query(
                query_embeddings=[vector.tolist()],
                n_results=n,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        )
        # a chunk deleted while the query ran comes back without its document and metadata: leave it out
        rows = [
            r
            for r in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True)
            if r[1] is not None and r[2] is not None
        ]
        found = to_passages([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], self.dimension)
        for rank, (p, r) in enumerate(zip(found, rows, strict=True)):
            p.dense_score = 1.0 - float(r[3])
            p.dense_rank = rank
        return self.committed(found)

    def committed(self, passages: list[Passage]) -> list[Passage]:
        """The passages whose article record (the commit marker) is written and names their content.

        An ingest writes chunks first and the record last, so while it runs a reader would otherwise find
        chunks of a new article not yet registered, or an updated article's new chunks beside its old
        record (offsets into a text not yet stored). Chunk ids carry the content hash (rag.chunking).
        """
        if not passages:
            return passages
        ids = sorted({p.article_id for p in passages})
        got = self._try(lambda: self.articles.get(ids=ids, include=["metadatas"]))
        hashes = {
            aid: str((m or {}).get("content_hash", "")) for aid, m in zip(got["ids"], got["metadatas"], strict=True)
        }
        return [p for p in passages if is_current(p.chunk_id, hashes.get(p.article_id))]

    def get_passages(self, ids: list[str]) -> list[Passage]:
        if not ids:
            return []
        got = self._try(lambda: self.chunks.get(ids=ids, include=["documents", "metadatas"]))
        found = self.committed(to_passages(got["ids"], got["documents"], got["metadatas"], self.dimension))
        by_id = {p.chunk_id: p for p in found}
        return [by_id[i] for i in ids if i in by_id]

    def get_embeddings(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self._try(lambda: self.chunks.get(ids=ids, include=["embeddings"]))
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"], strict=True)}
