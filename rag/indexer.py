"""Idempotent, incremental, resumable ingest: articles -> chunks -> embeddings -> store."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rag.chunking import Chunker
from rag.embeddings import LocalMiniLMEmbeddings
from rag.errors import CorpusError
from rag.ingest import Skipped, iter_files, load_articles, suffix_of
from rag.memory import release_free_memory
from rag.store import ChromaStore
from rag.types import Article, Chunk

ProgressFn = Callable[[int, int], None]  # (articles done, chunks embedded)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    undated: list[Skipped] = field(default_factory=list)  # added/updated articles with no parseable date
    dates_added: int = 0  # unchanged articles stored before dates were, given their date now
    changed_ids: set[str] = field(default_factory=set)  # articles added, updated, removed or re-dated
    embed_seconds: float = 0.0
    syndication: dict[str, int] = field(default_factory=dict)  # clusters after the ingest (rag.syndication)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def to_dict(self) -> dict[str, object]:
        return {
            "articles": {
                "added": self.added,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "removed": self.removed,
            },
            "chunks": {"added": self.chunks_added, "removed": self.chunks_removed},
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "undated": [{"path": s.path, "reason": s.reason} for s in self.undated],
            "dates_added": self.dates_added,
            "syndication": self.syndication,
        }


def count_articles(paths: Sequence[Path]) -> int:
    """How many articles an ingest of paths will see (records in JSON lines, else files)."""
    total = 0
    for f in iter_files(paths):
        if suffix_of(f) in (".jsonl", ".jsonl.gz"):
            opener = gzip.open if f.name.lower().endswith(".gz") else open
            try:
                with opener(f, "rb") as fh:  # type: ignore[operator]
                    total += sum(1 for line in fh if line.strip())
            except (OSError, EOFError):
                total += 1
        else:
            total += 1
    return total


class Indexer:
    """Streams articles, embeds them in batches of about `batch_chunks` chunks, commits each batch.

    Memory is bounded by one batch plus the registry's metadata. The embedding model is only
    loaded when something needs embedding, so a no-op re-ingest never loads it.
    """

    def __init__(
        self,
        store: ChromaStore,
        embedder: LocalMiniLMEmbeddings | Callable[[], LocalMiniLMEmbeddings],
        chunker: Chunker,
        batch_chunks: int = 256,
        max_article_bytes: int = 5 * 2**20,
    ) -> None:
        self.store = store
        self.max_article_bytes = max_article_bytes
        self._embedder = embedder
        self.chunker = chunker
        self.batch_chunks = batch_chunks

    @property
    def embedder(self) -> LocalMiniLMEmbeddings:
        if not isinstance(self._embedder, LocalMiniLMEmbeddings):
            self._embedder = self._embedder()
        return self._embedder

    def ingest(
        self,
        paths: Sequence[Path],
        sync: bool = False,
        progress: ProgressFn | None = None,
        limit: int | None = None,
    ) -> IngestReport:
        """Add new and changed articles; with sync, remove those whose files are gone.

        Resumable: each batch's registry records are written after its chunks, so a run killed at
        any point is finished by running it again (no duplicate, no missing chunk).
        """
        report = IngestReport()
        self.store.open(create=True)
        known = self.store.article_index()
        if known:
            # A damaged vector index would otherwise go unnoticed when every article is unchanged.
            self.store.probe_vectors()
        seen: set[str] = set()
        pending: list[tuple[Article, list[Chunk], bool]] = []
        pending_chunks = 0
        done = 0
        dirty = False
        # Write-behind: a batch is written to the store on a worker thread while the next one is
        # embedded (the write waits on Chroma's I/O, about a tenth of the ingest otherwise). At most
        # one batch is in flight and batches are written in order, so the commit order is unchanged.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest-write")
        inflight: tuple[Future[None], list[tuple[Article, list[Chunk], bool]]] | None = None

        def mark_dirty() -> None:
            # Bump the revision before the first write too: caches keyed on the old one are stale
            # from now on, even if this run is killed before it finishes.
            nonlocal dirty
            if not dirty:
                self.store.bump_revision()
                dirty = True

        def settle() -> None:
            """Wait for the batch in flight; count it once it is committed (re-raises its error)."""
            nonlocal inflight
            if inflight is None:
                return
            (future, batch), inflight = inflight, None
            future.result()
            release_free_memory()  # Chroma's write buffers, freed but kept by malloc (rag.memory)
            for article, cs, is_update in batch:
                report.changed_ids.add(article.article_id)
                report.chunks_added += len(cs)
                if is_update:
                    report.updated += 1
                    report.chunks_removed += int(known[article.article_id].get("chunks", 0))
                else:
                    report.added += 1
            if progress:
                progress(done, report.chunks_added)

        def flush() -> None:
            nonlocal pending, pending_chunks, inflight
            if not pending:
                return
            t = time.perf_counter()
            texts, spans = self.chunker.model_inputs([(a, cs) for a, cs, _ in pending])
            vectors, svecs = self.embedder.embed_with_spans(texts, spans)
            report.embed_seconds += time.perf_counter() - t
            settle()
            mark_dirty()
            items = [(a, cs) for a, cs, _ in pending]
            inflight = writer.submit(self.store.add_articles, items, vectors, svecs), pending
            pending, pending_chunks = [], 0

        to_date: list[Article] = []

        def add_dates() -> None:
            nonlocal to_date
            if to_date:
                mark_dirty()
                self.store.set_dates(to_date)
                report.dates_added += len(to_date)
                report.changed_ids.update(a.article_id for a in to_date)
                to_date = []

        try:
            for article in self._articles(paths, report.skipped):
                if limit is not None and done >= limit:
                    break
                done += 1
                if article.article_id in seen:
                    report.skipped.append(Skipped(article.source_path, f"duplicate article id {article.article_id}"))
                    continue
                seen.add(article.article_id)
                old = known.get(article.article_id)
                if old is not None and old.get("content_hash") == article.content_hash:
                    report.unchanged += 1
                    if "published_day" not in old:  # stored before dates were: add them, no re-embedding
                        to_date.append(article)
                        if len(to_date) >= 200:
                            add_dates()
                    if progress and done % 50 == 0:
                        progress(done, report.chunks_added)
                    continue
                if not article.published:
                    report.undated.append(Skipped(_where(article), _undated_reason(article)))
                chunks = self.chunker.split(article)
                pending.append((article, chunks, old is not None))
                pending_chunks += len(chunks)
                if pending_chunks >= self.batch_chunks:
                    flush()
            flush()
            settle()
            add_dates()
        finally:
            writer.shutdown(wait=True)  # an interrupted run still finishes (commits) the batch in flight
        if sync:
            roots = [str(p.resolve()) for p in paths]
            for aid, meta in known.items():
                src = str(meta.get("source_path", ""))
                if aid not in seen and any(src == r or src.startswith(r.rstrip("/") + "/") for r in roots):
                    mark_dirty()
                    report.chunks_removed += self.store.delete_article(aid)
                    report.removed += 1
                    report.changed_ids.add(aid)
        if progress:
            progress(done, report.chunks_added)
        if dirty:
            self.store.bump_revision()
        return report

    def _articles(self, paths: Iterable[Path], skipped: list[Skipped]) -> Iterable[Article]:
        for f in iter_files(paths):
            try:
                yield from load_articles(f, skipped, self.max_article_bytes)
            except CorpusError as exc:
                skipped.append(Skipped(exc.path, exc.problem))


def _where(article: Article) -> str:
    """The file (and record id, for JSON records) an article came from, for warnings."""
    path = article.source_path
    return f"{path} ({article.article_id})" if suffix_of(Path(path)) in (".json", ".jsonl", ".jsonl.gz") else path


def _undated_reason(article: Article) -> str:
    if article.published_raw.strip():
        return f"undated: publication date {article.published_raw.strip()[:60]!r} is not a date it can read"
    return "undated: no publication date in its metadata or dateline"
