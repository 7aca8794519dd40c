"""Idempotent, incremental, resumable ingest: articles -> chunks -> embeddings -> store."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.chunking import Chunker
from rag.embeddings import LocalMiniLMEmbeddings
from rag.errors import CorpusError
from rag.ingest import Skipped, iter_files, load_articles, suffix_of
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
    embed_seconds: float = 0.0

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
    def __init__(
        self, store: ChromaStore, embedder: LocalMiniLMEmbeddings, chunker: Chunker, batch_chunks: int = 256
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.batch_chunks = batch_chunks

    def ingest(
        self,
        paths: Sequence[Path],
        sync: bool = False,
        progress: ProgressFn | None = None,
        limit: int | None = None,
    ) -> IngestReport:
        """Add new and changed articles; with sync, remove those whose files are gone."""
        import time

        report = IngestReport()
        self.store.open(create=True)
        known = self.store.article_index()
        seen: set[str] = set()
        pending: list[tuple[Article, list[Chunk], bool]] = []
        pending_chunks = 0
        done = 0

        def flush() -> None:
            nonlocal pending, pending_chunks
            if not pending:
                return
            chunks = [c for _, cs, _ in pending for c in cs]
            t = time.perf_counter()
            vectors, svecs = self.embedder.embed_with_spans(
                [c.text for c in chunks], [[(s - c.start, e - c.start) for s, e in c.sentences] for c in chunks]
            )
            report.embed_seconds += time.perf_counter() - t
            i = 0
            for article, cs, is_update in pending:
                self.store.add_article(article, cs, vectors[i : i + len(cs)], svecs[i : i + len(cs)])
                i += len(cs)
                report.chunks_added += len(cs)
                if is_update:
                    report.updated += 1
                    report.chunks_removed += int(known[article.article_id].get("chunks", 0))
                else:
                    report.added += 1
            if progress:
                progress(done, report.chunks_added)
            pending, pending_chunks = [], 0

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
                if progress and done % 50 == 0:
                    progress(done, report.chunks_added)
                continue
            chunks = self.chunker.split(article)
            pending.append((article, chunks, old is not None))
            pending_chunks += len(chunks)
            if pending_chunks >= self.batch_chunks:
                flush()
        flush()
        if sync:
            roots = [str(p.resolve()) for p in paths]
            for aid, meta in known.items():
                src = str(meta.get("source_path", ""))
                if aid not in seen and any(src == r or src.startswith(r.rstrip("/") + "/") for r in roots):
                    report.chunks_removed += self.store.delete_article(aid)
                    report.removed += 1
        if progress:
            progress(done, report.chunks_added)
        if report.changed:
            self.store.bump_revision()
        return report

    def _articles(self, paths: Iterable[Path], skipped: list[Skipped]) -> Iterable[Article]:
        for f in iter_files(paths):
            try:
                yield from load_articles(f, skipped)
            except CorpusError as exc:
                skipped.append(Skipped(exc.path, exc.problem))
