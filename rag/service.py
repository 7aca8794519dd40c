"""Build everything from Settings; the one object edges (CLI, UI, evals) talk to."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag import doctor, syndication
from rag.bm25 import BM25Index
from rag.calibration import Calibration
from rag.chain import Answerer, RagChain
from rag.chunking import Chunker
from rag.config import Settings
from rag.dates import UNDATED_DAY, make_filter, matches
from rag.doctor import DoctorReport
from rag.embeddings import LocalMiniLMEmbeddings
from rag.errors import ConfigError, QuestionError, RagIndexError
from rag.extractive import ExtractiveAnswerer
from rag.indexer import Indexer, IngestReport, ProgressFn
from rag.ranking import Ranking
from rag.retrieve import HybridRetriever, Method
from rag.stages import Request
from rag.store import SCHEMA_VERSION, ChromaStore
from rag.types import Answer, Article, DateFilter, Passage, Turn

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from rag.judge import SupportJudge


MAX_K = 50  # passages per question: the same bound as RAG_TOP_K


def _check_k(k: int | None) -> None:
    if k is not None and not 1 <= k <= MAX_K:
        raise QuestionError(f"k must be between 1 and {MAX_K} passages, not {k}.")


class RagService:
    """Thread-safe to share between sessions: conversation history is passed in per call."""

    def __init__(
        self,
        settings: Settings,
        chat_model: BaseChatModel | None = None,
        *,
        embedder: LocalMiniLMEmbeddings | None = None,
        calibration: Calibration | None = None,
        ranking: Ranking | None = None,
        chroma_client: Any = None,
    ) -> None:
        """The composition root: everything is built from settings, lazily, unless given here.

        chat_model: a LangChain chat model instead of the configured endpoint (tests, embedding apps);
        embedder: an already loaded embedding model to share (benchmarks, several services in one process);
        calibration: the answerer's fitted values instead of rag/calibration.json (calibration runs);
        ranking: the retriever's fusion and pool tunables instead of the shipped ones (ablations);
        chroma_client: a chromadb client made by the caller (e.g. an EphemeralClient in an embedding app)
        instead of the one the settings describe; the caller then owns that index's safety.
        """
        self.settings = settings
        self._chat_model = chat_model
        self._lock = threading.Lock()
        self._given_embedder = embedder
        self._ranking = ranking
        self._chroma_client = chroma_client
        self._days: tuple[str, dict[str, int | None]] | None = None  # (store revision, article -> published_day)
        self.calibration = calibration if calibration is not None else Calibration.load()

    # -- components, built lazily ------------------------------------------------
    @cached_property
    def embedder(self) -> LocalMiniLMEmbeddings:
        return self._given_embedder or LocalMiniLMEmbeddings()

    @property
    def embedder_loaded(self) -> bool:
        """Whether the embedding model is in memory (a no-op re-ingest and asking for the mode never load it)."""
        return "embedder" in self.__dict__

    @cached_property
    def _store(self) -> ChromaStore:
        return ChromaStore(
            self.settings, LocalMiniLMEmbeddings.model_name, LocalMiniLMEmbeddings.dimension, self._chroma_client
        )

    @cached_property
    def _bm25(self) -> BM25Index:
        return BM25Index(
            self.settings.bm25_dir / self.settings.collection, self._store, title_header=self.settings.bm25_title_header
        )

    @cached_property
    def _retriever(self) -> HybridRetriever:
        return HybridRetriever(
            self._store,
            self.embedder,
            self._bm25,
            self._ranking or Ranking(candidates=self.settings.candidates),
            collapse_duplicates=self.settings.collapse_duplicates,
        )

    @cached_property
    def _judge(self) -> SupportJudge:
        """The LLM answers' judge: one per service (its model, cut at the judge's layer, loads on first use and
        outlives a rebuilt chain)."""
        from rag.judge import SupportJudge

        return SupportJudge()

    @cached_property
    def _chain(self) -> RagChain:
        answerers: dict[str, Answerer] = {
            "extractive": ExtractiveAnswerer(self.settings.max_answer_sentences, self.calibration)
        }
        chain = RagChain(self._retriever, self._bm25.idf, self.calibration, answerers)
        if self.settings.llm_configured or self._chat_model is not None:
            from rag.llm import LLMAnswerer, LLMCondenser, build_chat_model

            model = self._chat_model or build_chat_model(self.settings)
            chain.answerers["llm"] = LLMAnswerer(model, self.settings, self._judge)
            chain.condensers["llm"] = LLMCondenser(model, self.settings)
        return chain

    def close(self) -> None:
        """Release the embedded index so that another process may open it (the service stays usable:
        the next call takes ownership again)."""
        store = self.__dict__.pop("_store", None)
        if store is not None:
            for name in ("_bm25", "_retriever", "_chain"):
                self.__dict__.pop(name, None)
            store.close()

    # -- ingest --------------------------------------------------------------------
    def _chunker(self) -> Chunker:
        return Chunker(self.settings.chunk_size, self.settings.chunk_overlap, self.settings.embed_title_header)

    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        sync: bool = False,
        progress: ProgressFn | None = None,
        limit: int | None = None,
    ) -> IngestReport:
        paths = list(paths) if paths else [self.settings.corpus_dir]
        chunker = self._chunker()
        with self._lock:
            # The BM25 index can take this ingest as a delta only if it described the store before it.
            before = self._store.revision() if self._store.exists() else None
            # The embedder is loaded only if something needs embedding (a no-op re-ingest never loads it).
            indexer = Indexer(
                self._store, lambda: self.embedder, chunker, max_article_bytes=int(self.settings.max_article_mb * 2**20)
            )
            report = indexer.ingest(
                paths, sync=sync, progress=progress, limit=limit
            )
            if report.changed_ids:  # a small change goes to the delta segment, a large one rebuilds (merges)
                self._bm25.update(before, report.changed_ids, report.chunks_added + report.chunks_removed)
            elif not self._bm25.loads_current():  # a damaged BM25 file is rebuilt here too
                self._bm25.rebuild()
            if report.changed_ids or self._store.schema_version < SCHEMA_VERSION:
                # syndicated-copy clusters (an index stored before them is upgraded here, no re-embedding)
                found = syndication.refresh(self._store)
                report.syndication = {
                    "clusters": found.clusters, "articles_in_clusters": found.clustered,
                    "changed": found.changed, "signed": found.signed, "upgraded": int(found.upgraded),
                }
        return report

    def rebuild(self) -> int:
        """Re-embed every registered article from the text the index stores, with the current settings (for
        example the title header): the chunk collection is made anew, then BM25 and the copy clusters.
        Returns the number of articles re-embedded (0 when there is no index yet)."""
        with self._lock:
            if not self._store.exists():
                return 0
            self._store.reset_chunks()
            # until every article is re-embedded the index says so: an interrupted run is not taken as done
            self._store.set_embed_header("rebuilding")
            self._store.bump_revision()
            ids = sorted(self._store.article_index())
            doctor.reindex(self._store, lambda: self.embedder, self._chunker(), ids)
            self._store.set_embed_header(self._store.embed_header)
            self._store.bump_revision()
            self._bm25.rebuild()
            syndication.refresh(self._store)
        return len(ids)

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check the index against the article registry; with repair, rebuild what is broken."""
        if not self._store.exists():
            raise RagIndexError(f"No index in {self.settings.index_location} - run `rag ingest corpus/` first.")
        with self._lock:
            report = doctor.check(self._store, self._bm25)
            if repair and not report.healthy:
                chunker = self._chunker()
                report = doctor.repair(self._store, self._bm25, lambda: self.embedder, chunker, report)
            if repair and (report.repaired or report.schema_version < SCHEMA_VERSION):
                syndication.refresh(self._store)  # re-made chunks get their cluster back; an old index is upgraded
                repaired = [*report.repaired, "refreshed the syndicated-copy clusters"]
                report = doctor.check(self._store, self._bm25)
                report.repaired = repaired
        return report

    def delete_article(self, article_id: str) -> int:
        with self._lock:
            before = self._store.revision()
            n = self._store.delete_article(article_id)
            self._store.bump_revision()
            self._bm25.update(before, {article_id})
            syndication.refresh(self._store)  # a deleted canonical copy hands its cluster to the next member
        return n

    def remove_source(self, path: Path) -> int:
        """Delete the articles read from a file (or from files under a folder) that is gone; how many."""
        target = str(path.resolve())
        ids = [
            aid
            for aid, meta in self._store.article_index().items()
            if (src := str(meta.get("source_path", ""))) == target or src.startswith(target.rstrip("/") + "/")
        ]
        if not ids:
            return 0
        with self._lock:
            before = self._store.revision()
            for aid in ids:
                self._store.delete_article(aid)
            self._store.bump_revision()
            self._bm25.update(before, set(ids))
            syndication.refresh(self._store)
        return len(ids)

    # -- questions -----------------------------------------------------------------
    def resolve_mode(self, mode: str | None) -> str:
        mode = mode or self.settings.mode
        if mode == "auto":
            mode = "llm" if self.settings.llm_configured else "extractive"
        available = {"extractive", "llm"} if self.settings.llm_configured or self._chat_model else {"extractive"}
        if mode not in available:  # decided from settings: asking for the mode builds nothing
            if mode == "llm":
                raise ConfigError(
                    "LLM mode needs a model: set RAG_LLM_BASE_URL or OPENAI_API_KEY, or use --mode extractive."
                )
            raise ConfigError(f"Unknown mode {mode!r} - use auto, extractive or llm.")
        return mode

    def _request(
        self,
        question: str,
        history: list[Turn] | None,
        k: int | None,
        mode: str | None,
        method: Method,
        dates: DateFilter | None = None,
    ) -> Request:
        q = (question or "").strip()
        if not q:
            raise QuestionError("The question is empty - type a question about the articles.")
        if len(q) > self.settings.max_question_chars:
            raise QuestionError(
                f"The question has {len(q)} characters, over the limit of "
                f"{self.settings.max_question_chars} - shorten it."
            )
        try:
            q.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes that were not UTF-8 (a terminal or pipe in another encoding)
            raise QuestionError(
                f"The question is not valid UTF-8 text (character {exc.start + 1}) - retype it or fix the "
                "terminal's encoding."
            ) from None
        _check_k(k)
        if not self._store.exists() or self._store.count() == 0:  # count() opens it: mismatches raise
            raise RagIndexError(f"No index in {self.settings.index_location} - run `rag ingest corpus/` first.")
        dates = dates or DateFilter()
        return Request(
            question=q,
            history=tuple(history or ()),
            k=k or self.settings.top_k,
            mode=self.resolve_mode(mode),
            method=method,
            dates=dates if dates.active else None,
            recency_ref=dates.upper or date.today(),
            refusal_note=self._filter_note(dates) if dates.active else "",
        )

    def _filter_note(self, dates: DateFilter) -> str:
        """What a date filter leaves (said when the answer is refused); an index stored before dates raises."""
        days = self._article_days()
        total = len(days)
        older = sum(d is None for d in days.values())
        if older:
            raise RagIndexError(
                f"{older} of the {total} articles in {self.settings.index_location} were stored by an "
                "older version, without publication dates, so a date filter cannot be applied - run `rag ingest` "
                "on their folders again (dates are added without re-embedding), then retry."
            )
        matching = sum(matches(dates, d) for d in days.values() if d is not None)
        undated = sum(d is not None and d <= UNDATED_DAY for d in days.values())
        note = f"Only {matching} of the {total} articles are {dates.describe()}"
        if undated:
            note += f"; {undated} undated article(s) are left out by any date filter"
        return note + "."

    def _article_days(self) -> dict[str, int | None]:
        """article_id -> published_day (None: stored before dates) of every registered article, read once per
        store revision (reading them for every filtered question cost 0.8 s at 5,386 articles)."""
        revision = self._store.revision()
        cached = self._days
        if cached is None or cached[0] != revision:
            index = self._store.article_index()
            cached = (revision, {aid: int(m["published_day"]) if "published_day" in m else None
                                 for aid, m in index.items()})
            self._days = cached
        return cached[1]

    def ask(
        self,
        question: str,
        history: list[Turn] | None = None,
        k: int | None = None,
        mode: str | None = None,
        method: Method = "hybrid",
        since: date | str | None = None,
        until: date | str | None = None,
        as_of: date | str | None = None,
    ) -> Answer:
        """One cited answer. since/until/as_of (dates or YYYY-MM-DD) limit the articles by publication day:
        since <= day <= min(until, as_of); undated articles are then left out. A malformed date or since
        after until raises QuestionError; an index stored before dates raises RagIndexError."""
        dates = make_filter(since, until, as_of)
        return self._chain.invoke(self._request(question, history, k, mode, method, dates))

    def stream(
        self,
        question: str,
        history: list[Turn] | None = None,
        k: int | None = None,
        mode: str | None = None,
        since: date | str | None = None,
        until: date | str | None = None,
        as_of: date | str | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """Events for a UI: ("step", (name, ms)), ("text", piece), ("answer", Answer); dates as in ask()."""
        dates = make_filter(since, until, as_of)
        return self._chain.stream(self._request(question, history, k, mode, "hybrid", dates))

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        method: Method = "hybrid",
        *,
        dates: DateFilter | None = None,
        recency: date | None = None,
        collapse_copies: bool | None = None,
        ranking: Ranking | None = None,
    ) -> list[Passage]:
        """The top k passages for a question, without answering (evals, benchmarks, other front ends).

        dates filters both retrievers; recency (a reference day) adds the recency prior; collapse_copies overrides
        the setting that folds syndicated copies into one slot (None: as configured); ranking replaces the
        retriever's tunables for this call (ablations).
        """
        _check_k(k)
        return self._retriever.retrieve(
            question, k or self.settings.top_k, method=method, dates=dates, recency=recency,
            collapse_copies=collapse_copies, ranking=ranking,
        )

    def warm_up(self) -> None:
        """Open the index, build the pipeline and load the embedding models (a server's first request is warm)."""
        self.stats()
        chain = self._chain
        self.embedder.embed_query("warm up")
        if "llm" in chain.answerers:  # the judge's own (three-layer) model
            self._judge.prepare(["warm up"], [])

    # -- library -------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        exists = self._store.exists()
        return {
            "index": self.settings.index_location,
            "articles": self._store.article_count() if exists else 0,
            "chunks": self._store.count() if exists else 0,
            "schema_version": self._store.schema_version,
            "embedding_model": LocalMiniLMEmbeddings.model_name,
            "mode": self.resolve_mode(None)
            if self.settings.mode != "llm" or self.settings.llm_configured
            else "llm (not configured)",
            "llm_model": self.settings.llm_model if self.settings.llm_configured else None,
            "top_k": self.settings.top_k,
        }

    def list_articles(self) -> list[dict[str, Any]]:
        if not self._store.exists():
            return []
        return [
            {"article_id": aid, **{k: v for k, v in meta.items() if k != "minhash"}}
            for aid, meta in self._store.article_index().items()
        ]

    def get_article(self, article_id: str) -> Article | None:
        return self._store.get_article(article_id)
