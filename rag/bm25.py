"""BM25 over every chunk (bm25s): persisted under the data dir, keyed by the store's revision, with a delta
segment for small changes (rag.bm25delta) and date masks."""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from rag.bm25build import COUNTS_FILE, SavedCounts, SegmentBuilder
from rag.bm25delta import Delta
from rag.dates import UNDATED_DAY, day_number, from_day_number
from rag.memory import release_free_memory
from rag.store import ChromaStore
from rag.text import terms
from rag.types import DateFilter

log = logging.getLogger(__name__)

IDF_PRIOR_CHUNKS = 1000  # pseudo-chunks of the IDF prior (see BM25Index.idf)
IDF_PRIOR_DF = 0.01  # the prior's document frequency of any term
DELTA_MERGE_MIN = 2000  # a delta (added + deleted chunks) beyond max(this, DELTA_MERGE_FRACTION of the
DELTA_MERGE_FRACTION = 0.05  # main segment) is merged: the whole index is rebuilt instead


def _bm25s():  # type: ignore[no-untyped-def]
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
    return bm25s


def chunk_terms(body: str, title: str = "") -> list[str]:
    """A chunk's BM25 terms: its article's title (a contextual header) and then its body text.

    The header is indexed only: passages, quotes and the characters returned stay the body text.
    """
    return terms(title) + terms(body) if title else terms(body)


class BM25Index:
    """bm25s over every chunk, persisted under the data dir and keyed by the store's revision.

    With `title_header` each chunk's text is indexed after its article's title (the title's words find
    every chunk of a story, not only the first); an index persisted with the other choice is rebuilt
    from the store when loaded (no re-embedding).
    """

    def __init__(
        self, directory: Path, store: ChromaStore, recheck_seconds: float = 5.0, *, title_header: bool = False
    ) -> None:
        self.directory = directory
        self.store = store
        self.header = "title" if title_header else "none"
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._model: object | None = None
        self._ids: list[str] = []
        self._days = np.zeros(0, dtype=np.int32)  # published_day per chunk (0: undated), for date masks
        self._df: dict[str, int] = {}
        self._avgdl = 0.0
        self._revision = ""
        self._base = ""  # revision of the main segment loaded (the delta, if any, extends it)
        self._main_loaded = False
        self._delta: Delta | None = None
        self._alive: np.ndarray | None = None  # 1.0 per main chunk still in the store, 0.0 masked (deleted)
        self._pos: dict[str, int] | None = None
        self._checked = 0.0

    # -- lifecycle ------------------------------------------------------------------
    def _ensure(self) -> None:
        now = time.monotonic()
        if self._model is not None and now - self._checked < self.recheck_seconds:
            return
        with self._lock:
            revision = self.store.revision()
            self._checked = now
            if self._model is not None and revision == self._revision:
                return
            if not self._load(revision):
                # another process changed the store (an instance on a shared Chroma server, or an ingest whose
                # delta this cache did not see): chunks still stored keep their saved rows (by id), and only
                # the chunks added since are read - without the header, whose titles can change under an id
                self.rebuild(revision, self._reusable_by_id())

    def _load(self, revision: str) -> bool:
        bm25s = _bm25s()

        meta_path = self.directory / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
            base = str(meta.get("revision"))
            if meta.get("header", "none") != self.header:  # indexed with the other chunk text: rebuild
                return False
            delta = None
            if base != revision:  # the main segment plus a delta may describe this revision
                delta = Delta.load(self.directory)
                if delta is None or delta.base != base or delta.revision != revision:
                    return False
            if not (self._main_loaded and self._base == base):
                self._main_loaded = False
                self._ids = meta["ids"]
                self._days = np.asarray(meta["days"], dtype=np.int32)  # an index saved before dates: rebuilt
                self._df = meta["df"]
                self._avgdl = float(meta.get("avgdl", 0.0))
                self._model = (
                    bm25s.BM25.load(str(self.directory / "index"), show_progress=False) if self._ids else None
                )
                self._base, self._main_loaded, self._pos = base, True, None
            self._set_delta(delta)
        except (OSError, ValueError, KeyError):
            self._main_loaded = False
            return False
        except Exception as exc:  # a truncated or damaged array file (EOFError, zipfile/pickle errors): rebuild
            log.warning("BM25 index in %s is damaged (%s: %s); rebuilding it", self.directory,
                        exc.__class__.__name__, exc)
            self._model = None
            self._main_loaded = False
            return False
        self._revision = revision
        return True

    def loads_current(self) -> bool:
        """Whether the persisted index loads and matches the store's revision (read from disk, no rebuild)."""
        with self._lock:
            self._model = None
            self._main_loaded = False
            return self._load(self.store.revision())

    def size(self) -> int:
        """Chunks in the loaded index (main segment without its masked chunks, plus the delta)."""
        if self._delta is None:
            return len(self._ids)
        return len(self._ids) - len(self._delta.deleted) + len(self._delta.ids)

    def _positions(self) -> dict[str, int]:
        """Main-segment row of each chunk id (made when first needed, dropped when the segment reloads)."""
        if self._pos is None:
            self._pos = {cid: i for i, cid in enumerate(self._ids)}
        return self._pos

    def _set_delta(self, delta: Delta | None) -> None:
        self._delta = delta
        self._alive = None
        if delta is not None and delta.deleted:
            pos = self._positions()
            alive = np.ones(len(self._ids), dtype=np.float32)
            for cid in delta.deleted:
                if (i := pos.get(cid)) is not None:
                    alive[i] = 0.0
            self._alive = alive

    def update(self, before: str | None, article_ids: set[str], chunks_changed: int = 0) -> None:
        """After a change to these articles, bring the index to the store's revision: a small change goes
        to the delta segment (added chunks, deleted ones masked), a large one (or an index that did not
        describe the store at revision `before`) rebuilds the whole index, merging the delta.

        `chunks_changed` (chunks added plus removed, when the caller knows it) lets a change that is
        certainly large rebuild at once, without loading the old index first."""
        with self._lock:
            revision = self.store.revision()
            if chunks_changed > DELTA_MERGE_MIN and _merges(chunks_changed, self.store.count()):  # count only if it may
                self.rebuild(revision, self._reusable(before, article_ids))
                return
            if before is None or not self._load(before):
                self.rebuild(revision)
                return
            old = self._delta or Delta(self._base, before)
            keep = [i for i, cid in enumerate(old.ids) if _article_of(cid) not in article_ids]
            deleted = set(old.deleted) | {cid for cid in self._ids if _article_of(cid) in article_ids}
            ids, docs = self.store.chunk_texts_of(sorted(article_ids))
            articles = {aid: a for aid in article_ids if (a := self.store.get_article(aid))}
            day_of = {aid: day_number(a.published) for aid, a in articles.items()}
            title_of = {aid: a.title for aid, a in articles.items()} if self.header == "title" else {}
            delta = Delta(
                self._base,
                revision,
                [old.ids[i] for i in keep] + ids,
                [old.rows[i] for i in keep]
                + [chunk_terms(d, title_of.get(_article_of(c), "")) for c, d in zip(ids, docs, strict=True)],
                [old.days[i] for i in keep] + [day_of.get(_article_of(c), UNDATED_DAY) for c in ids],
                sorted(deleted),
            )
            if _merges(len(delta.ids) + len(delta.deleted), len(self._ids)):
                self.rebuild(revision, self._reusable(before, article_ids))
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            delta.save(self.directory)
            self._set_delta(delta)
            self._revision, self._checked = revision, time.monotonic()
            log.info("BM25 delta: %d chunks added, %d masked", len(delta.ids), len(delta.deleted))

    def is_current(self) -> bool:
        """Whether the persisted index matches the store's revision (no rebuild needed)."""
        try:
            meta = json.loads((self.directory / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(meta.get("revision") == self.store.revision() and meta.get("header", "none") == self.header)

    def _reusable(self, before: str | None, article_ids: set[str]) -> Reuse | None:
        """The rows the last full build saved, when they and the delta (if any) describe the store at `before`,
        with what has changed since: chunks the delta masked and the articles of this change."""
        if before is None:
            return None
        delta = Delta.load(self.directory)
        base = delta.base if delta is not None and delta.revision == before else before
        saved = SavedCounts.load(self.directory / COUNTS_FILE, self.store.chunks_id, self.header)
        if saved is None or saved.revision != base:
            return None
        return Reuse(saved, set(delta.deleted) if delta is not None and base != before else set(), article_ids)

    def _reusable_by_id(self) -> Reuse | None:
        """Saved rows of this collection, valid for every chunk id still stored (none with the title header)."""
        if self.header != "none":
            return None
        saved = SavedCounts.load(self.directory / COUNTS_FILE, self.store.chunks_id, self.header)
        return Reuse(saved, set(), set()) if saved is not None else None

    def rebuild(self, revision: str | None = None, reuse: Reuse | None = None) -> None:
        """Tokenise every chunk in the store and persist a new index. With `reuse`, chunks unchanged since the
        last full build take their saved rows, and only the others' text is read back from the store."""
        _bm25s()  # quiets its logger

        revision = revision if revision is not None else self.store.revision()
        registry = self.store.article_index()
        titles = {aid: str(m.get("title") or "") for aid, m in registry.items()} if self.header == "title" else {}
        ids: list[str] = []
        if reuse is None:
            builder = SegmentBuilder()  # each chunk's distinct terms and counts in flat arrays (rag.bm25build)
            for batch_ids, docs in self.store.iter_chunks("documents"):
                ids.extend(batch_ids)
                for cid, d in zip(batch_ids, docs, strict=True):
                    builder.add(chunk_terms(d, titles.get(_article_of(cid), "")))
        else:
            builder = reuse.saved.builder()
            pos = {cid: i for i, cid in enumerate(reuse.saved.ids)}
            read = 0
            for batch_ids, _ in self.store.iter_chunks(None):
                kept = {c: i for c in batch_ids if (i := pos.get(c)) is not None and reuse.unchanged(c)}
                texts = self.store.documents_of([c for c in batch_ids if c not in kept])
                read += len(texts)
                for cid in batch_ids:
                    if cid in kept:
                        builder.add_counted(*reuse.saved.row(kept[cid]))
                    elif cid in texts:
                        builder.add(chunk_terms(texts[cid], titles.get(_article_of(cid), "")))
                    else:
                        continue  # deleted since it was listed
                    ids.append(cid)
            log.info("BM25 rebuild: %d chunks' rows reused, %d read from the store", len(ids) - read, read)
        builder.compact()
        df, avgdl = builder.df(), builder.avgdl
        article_days = {aid: int(m.get("published_day", UNDATED_DAY) or 0) for aid, m in registry.items()}
        del registry, titles
        # chunk ids are "<article_id>:<hash>:<index>" (rag.chunking)
        days = [article_days.get(cid.rsplit(":", 2)[0], UNDATED_DAY) for cid in ids]
        model = None
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        if ids:
            model = builder.model()
            model.save(str(tmp / "index"), show_progress=False)
            builder.save(tmp / COUNTS_FILE, ids, revision, self.store.chunks_id, self.header)
        del builder
        release_free_memory()  # the build's and the store reads' freed heap (rag.memory)
        (tmp / "meta.json").write_text(
            json.dumps(
                {"revision": revision, "ids": ids, "df": df, "days": days, "avgdl": avgdl, "header": self.header}
            )
        )
        shutil.rmtree(self.directory, ignore_errors=True)
        tmp.rename(self.directory)
        self._model, self._ids, self._df, self._revision = model, ids, df, revision
        self._days = np.asarray(days, dtype=np.int32)
        self._avgdl, self._base, self._main_loaded, self._pos = avgdl, revision, True, None
        self._set_delta(None)
        self._checked = time.monotonic()
        log.info("BM25 index rebuilt: %d chunks", len(ids))

    # -- queries ----------------------------------------------------------------------
    def idf(self, term: str) -> float:
        """Term weight for the answerer, smoothed toward a prior so a tiny corpus gives sane weights.

        The prior is IDF_PRIOR_CHUNKS pseudo-chunks in which every term has document frequency
        IDF_PRIOR_DF: with one article (a handful of chunks) a word in every chunk is not treated as
        worthless, nor a word in none as decisive; at thousands of chunks the corpus dominates.
        """
        self._ensure()
        n = self.size() + IDF_PRIOR_CHUNKS
        extra = self._delta.df.get(term, 0) if self._delta is not None else 0
        df = self._df.get(term, 0) + extra + IDF_PRIOR_CHUNKS * IDF_PRIOR_DF
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def newest_day(self, upto: date) -> date | None:
        """The newest publication day among the indexed chunks on or before `upto` (None if none is dated)."""
        self._ensure()
        limit = day_number(upto)
        all_days = self._days if self._delta is None else np.concatenate([self._days, self._delta.days])
        days = all_days[(all_days > UNDATED_DAY) & (all_days <= limit)]
        return from_day_number(int(days.max())) if days.size else None

    def days_of(self, chunk_ids: Sequence[str]) -> list[int | None]:
        """Each chunk's published_day as this index holds it (from the registry); None for a chunk it lacks."""
        self._ensure()
        with self._lock:
            pos, days, delta = self._positions(), self._days, self._delta
        extra = dict(zip(delta.ids, delta.days, strict=True)) if delta is not None and delta.ids else {}
        out: list[int | None] = []
        for cid in chunk_ids:
            i = pos.get(cid)
            out.append(int(extra[cid]) if cid in extra else (int(days[i]) if i is not None else None))
        return out

    def search(self, query: str, n: int, dates: DateFilter | None = None) -> list[tuple[str, float]]:
        """Top-n chunk ids by BM25; with dates, chunks outside the filter are masked out (same rule as Chroma's)."""
        self._ensure()
        model, delta = self._model, self._delta
        words = terms(query)
        q = [t for t in words if t in self._df]
        lo = hi = 0
        if dates is not None and dates.active:
            lo = day_number(dates.since) if dates.since is not None else UNDATED_DAY + 1
            hi = day_number(dates.upper) if dates.upper is not None else int(np.iinfo(np.int32).max)
        hits: list[tuple[str, float]] = []
        if model is not None and q:
            mask = self._alive
            if lo:
                in_range = ((self._days >= lo) & (self._days <= hi)).astype(np.float32)
                mask = in_range if mask is None else mask * in_range
            if mask is None or mask.any():
                docs, scores = model.retrieve(  # type: ignore[attr-defined]
                    [q], k=min(n, len(self._ids)), show_progress=False, weight_mask=mask
                )
                hits = [(self._ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        if delta is not None and delta.ids:
            scores = delta.scores(words, max(1, self.size()), self._df, self._avgdl)
            if lo:
                days = np.asarray(delta.days, dtype=np.int64)
                scores[(days < lo) | (days > hi)] = 0.0
            top = np.argsort(-scores)[:n]
            hits += [(delta.ids[int(i)], float(scores[i])) for i in top if scores[i] > 0]
            hits.sort(key=lambda h: -h[1])
        return hits[:n]


@dataclass
class Reuse:
    """Saved rows of the last full build and what changed since (rag.bm25build.SavedCounts)."""

    saved: SavedCounts
    masked: set[str]  # chunks the delta masked
    articles: set[str]  # articles of the change being merged

    def unchanged(self, chunk_id: str) -> bool:
        return chunk_id not in self.masked and _article_of(chunk_id) not in self.articles


def _merges(delta_chunks: int, main_chunks: int) -> bool:
    """Whether a delta this size is merged, i.e. the whole index rebuilt instead of the delta written."""
    return delta_chunks > max(DELTA_MERGE_MIN, DELTA_MERGE_FRACTION * main_chunks)


def _article_of(chunk_id: str) -> str:
    """The article of a chunk id ("<article_id>:<hash>:<index>", rag.chunking)."""
    return chunk_id.rsplit(":", 2)[0]
