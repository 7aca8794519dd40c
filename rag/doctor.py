"""Check an index against its article registry and rebuild what is broken (`rag doctor [--repair]`)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rag.bm25 import BM25Index
from rag.chunking import Chunker
from rag.embeddings import LocalMiniLMEmbeddings
from rag.store import SCHEMA_VERSION, ChromaStore

log = logging.getLogger(__name__)

PAGE = 2000  # records read per call while checking
REINDEX_BATCH = 64  # articles chunked and embedded per batch while repairing


@dataclass
class DoctorReport:
    articles: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    vectors_ok: bool = True
    bm25_ok: bool = True
    bad_articles: set[str] = field(default_factory=set)  # registered articles whose chunks must be rebuilt
    orphans: list[str] = field(default_factory=list)  # chunks of no registered article
    schema_version: int = SCHEMA_VERSION  # what the index stores (rag.store.SCHEMA_VERSION)
    clusters: int = 0  # syndicated-copy clusters of two or more articles

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "articles": self.articles,
            "chunks": self.chunks,
            "problems": self.problems,
            "repaired": self.repaired,
            "schema_version": self.schema_version,
            "clusters": self.clusters,
        }


def check(store: ChromaStore, bm25: BM25Index) -> DoctorReport:
    """Every registered article has its chunks, every chunk a readable vector, BM25 loads and is current."""
    report = DoctorReport()
    registry = store.article_index()
    report.articles = len(registry)
    report.schema_version = store.schema_version
    if store.schema_version < SCHEMA_VERSION:
        report.problems.append(
            f"the index was stored by an older version (schema {store.schema_version}, this version writes "
            f"{SCHEMA_VERSION}): syndicated copies are not collapsed until `rag ingest` or `rag doctor --repair` "
            "adds their clusters from the stored text (no re-embedding)"
        )
    report.clusters = len({m.get("dup_of") for m in registry.values() if int(m.get("dup_n") or 1) > 1})
    per_article: Counter[str] = Counter()
    owner: dict[str, str] = {}
    for ids, metas in store.iter_chunks("metadatas", PAGE):
        for cid, m in zip(ids, metas, strict=True):
            owner[cid] = str(m.get("article_id", ""))
    per_article.update(owner.values())
    chunk_ids = list(owner)
    report.chunks = len(chunk_ids)
    for aid, meta in registry.items():
        want = int(meta.get("chunks", 0) or 0)
        if per_article.get(aid, 0) != want:
            report.bad_articles.add(aid)
    if report.bad_articles:
        report.problems.append(f"{len(report.bad_articles)} articles do not have the chunks their record lists")
    orphan_articles = set(per_article) - set(registry)
    if orphan_articles:
        report.orphans = [cid for cid, aid in owner.items() if aid in orphan_articles]
        report.problems.append(f"{len(report.orphans)} chunks belong to no registered article (an interrupted ingest)")
    _check_vectors(store, chunk_ids, report)
    _check_bm25(bm25, report)
    return report


def _check_vectors(store: ChromaStore, chunk_ids: list[str], report: DoctorReport) -> None:
    try:
        if chunk_ids:
            store.probe_vectors()
        for i in range(0, len(chunk_ids), PAGE):
            got = store.get_embeddings(chunk_ids[i : i + PAGE])
            missing = [cid for cid in chunk_ids[i : i + PAGE] if cid not in got or not np.isfinite(got[cid]).all()]
            if missing:
                raise ValueError(f"{len(missing)} chunks have no vector")
    except Exception as exc:  # InternalError "Error loading hnsw index" / "Error getting embedding" and kin
        cause = exc.__cause__ or exc
        report.vectors_ok = False
        report.problems.append(f"vectors unreadable ({cause.__class__.__name__}: {str(cause)[:120]})")


def _check_bm25(bm25: BM25Index, report: DoctorReport) -> None:
    try:
        if not bm25.loads_current():
            report.bm25_ok = False
            report.problems.append("the BM25 index is missing, stale or damaged")
        elif bm25.size() != report.chunks:
            report.bm25_ok = False
            report.problems.append(f"the BM25 index holds {bm25.size()} chunks, the store {report.chunks}")
    except Exception as exc:
        report.bm25_ok = False
        report.problems.append(f"the BM25 index cannot be read ({exc.__class__.__name__})")


def repair(
    store: ChromaStore,
    bm25: BM25Index,
    embedder: Callable[[], LocalMiniLMEmbeddings],
    chunker: Chunker,
    report: DoctorReport,
) -> DoctorReport:
    """Rebuild what check() found broken, from the texts the registry stores; then check again."""
    registry = store.article_index()
    if not report.vectors_ok:
        # A damaged vector index cannot be patched in place: the chunks are re-made from the articles'
        # stored text (chunking is deterministic, so chunk ids and offsets are unchanged) and re-embedded.
        store.reset_chunks()
        todo = set(registry)
        report.repaired.append(f"rebuilt the vector index: re-embedded the chunks of {len(todo)} articles")
    else:
        todo = set(report.bad_articles)
        if todo:
            report.repaired.append(f"re-made the chunks of {len(todo)} articles")
        if report.orphans:
            store.delete_chunks(report.orphans)
            report.repaired.append(f"deleted {len(report.orphans)} orphan chunks")
    reindex(store, embedder, chunker, sorted(todo))
    if todo or report.orphans or not report.vectors_ok:
        store.bump_revision()
    bm25.rebuild()
    if not report.bm25_ok or todo or report.orphans:
        report.repaired.append("rebuilt the BM25 index")
    after = check(store, bm25)
    after.repaired = report.repaired
    return after


def reindex(
    store: ChromaStore, embedder: Callable[[], LocalMiniLMEmbeddings], chunker: Chunker, article_ids: list[str]
) -> None:
    for i in range(0, len(article_ids), REINDEX_BATCH):
        articles = [a for aid in article_ids[i : i + REINDEX_BATCH] if (a := store.get_article(aid)) is not None]
        items = [(a, chunker.split(a)) for a in articles]
        chunks = [c for _, cs in items for c in cs]
        if not chunks:
            continue
        vectors, svecs = embedder().embed_with_spans(*chunker.model_inputs(items))
        store.add_articles(items, vectors, svecs)
        log.info("re-indexed %d articles", i + len(articles))
