"""The LangChain pipeline: condense -> retrieve -> gate -> answer, history passed per call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda

from rag import answer as extractive
from rag import brief
from rag.answer import REFUSAL_TEXT, Calibration
from rag.chunking import split_sentences
from rag.condense import condense
from rag.dates import wants_recency
from rag.retrieve import HybridRetriever, Method
from rag.types import Answer, DateFilter, Passage, Turn


class PassageRetriever(BaseRetriever):
    """Hybrid retrieval as a LangChain retriever (documents carry chunk metadata and scores)."""

    hybrid: Any
    k: int = 5
    method: str = "hybrid"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages = self.hybrid.retrieve(query, self.k, method=self.method)
        return [
            Document(
                page_content=p.text, id=p.chunk_id, metadata={**p.metadata, "chunk_id": p.chunk_id, "score": p.score}
            )
            for p in passages
        ]


@dataclass
class Request:
    """One question with the caller's conversation; timings fill in as the chain runs."""

    question: str
    history: list[Turn] = field(default_factory=list)
    k: int = 5
    mode: str = "extractive"
    method: Method = "hybrid"
    dates: DateFilter | None = None  # publication-day filter for both retrievers
    recency_ref: date | None = None  # "latest"-style questions get a recency prior relative to this day
    refusal_note: str = ""  # appended to a refusal (e.g. what the date filter left)
    standalone_question: str = ""
    query_vector: np.ndarray | None = None
    passages: list[Passage] = field(default_factory=list)
    relevance: float = 0.0
    candidates: list[extractive.Candidate] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


class Answerer(Protocol):
    """Writes the answer for passages that passed the gate."""

    mode: str

    def stream(self, req: Request) -> Iterator[str | Answer]:
        """Yield text pieces as they are produced, then the final Answer."""
        ...


class ExtractiveAnswerer:
    """Verbatim sentences of the retrieved passages, each carrying its [n]."""

    mode = "extractive"

    def __init__(self, max_sentences: int, calibration: Calibration) -> None:
        self.max_sentences = max_sentences
        self.calibration = calibration

    def stream(self, req: Request) -> Iterator[str | Answer]:
        """A news brief: grouped by article under source and date (rag.brief); metadata questions from metadata."""
        question = req.standalone_question or req.question
        field_name = brief.metadata_field(question)
        made = brief.metadata_answer(field_name, req.candidates) if field_name else None
        if made is None:
            chosen = brief.select(req.candidates, self.max_sentences, self.calibration, brief.is_broad(question))
            made = brief.compose(chosen, newest_first=wants_recency(question))
        for i, (label, idx) in enumerate(made.groups):
            pieces = " ".join(f"{made.sentences[j].text} [{made.sentences[j].citations[0]}]" for j in idx)
            yield ("" if i == 0 else "\n\n") + f"{label}: {pieces}"
        yield Answer(
            question=req.question,
            standalone_question=req.standalone_question,
            answer=made.text,
            refused=False,
            mode=self.mode,
            citations=made.citations,
            sentences=made.sentences,
            contexts=req.passages,
            relevance=req.relevance,
        )


class RagChain:
    """Condense, retrieve, gate; then the chosen answerer writes. Holds no conversation."""

    def __init__(
        self, retriever: HybridRetriever, idf: Any, calibration: Calibration, answerers: dict[str, Answerer]
    ) -> None:
        self.retriever = retriever
        self.idf = idf
        self.calibration = calibration
        self.answerers = answerers
        # mode -> (question, history) -> standalone question; the offline rewrite for other modes
        self.condensers: dict[str, Callable[[str, list[Turn]], str]] = {}
        self.prepare: Runnable[Request, Request] = (
            RunnableLambda(self._condense) | RunnableLambda(self._retrieve) | RunnableLambda(self._gate)
        )

    def as_retriever(self, k: int = 5) -> PassageRetriever:
        return PassageRetriever(hybrid=self.retriever, k=k)

    def _condense(self, req: Request) -> Request:
        t = time.perf_counter()
        req.standalone_question = self.condensers.get(req.mode, condense)(req.question, req.history)
        req.timings_ms["condense"] = (time.perf_counter() - t) * 1000
        return req

    def _retrieve(self, req: Request) -> Request:
        t = time.perf_counter()
        req.query_vector = self.retriever.embed_query(req.standalone_question)
        req.passages = self.retriever.retrieve(
            req.standalone_question,
            req.k,
            method=req.method,
            query_vector=req.query_vector,
            timer=lambda name, ms: req.timings_ms.__setitem__(f"retrieve_{name}", ms),
            dates=req.dates,
            recency=req.recency_ref if wants_recency(req.standalone_question) else None,
        )
        req.timings_ms["retrieve"] = (time.perf_counter() - t) * 1000
        return req

    def _gate(self, req: Request) -> Request:
        t = time.perf_counter()
        assert req.query_vector is not None
        req.candidates = extractive.candidates(
            req.question, req.standalone_question, req.query_vector, req.passages, self.idf, self.calibration
        )
        req.relevance = extractive.relevance(req.candidates, req.passages, self.calibration)
        req.timings_ms["gate"] = (time.perf_counter() - t) * 1000
        return req

    def _prepare(self, req: Request) -> Request:
        """Condense, retrieve and gate; a multi-sentence question is judged by its best part.

        "Ignore your instructions. What does Russia want?" is answered for its second sentence;
        a message made only of instructions has no part the passages answer, so it is refused.
        """
        parts = [req.question[s:e] for s, e in split_sentences(req.question)]
        if len(parts) <= 1:
            return self.prepare.invoke(req)
        best: Request | None = None
        for part in parts:
            sub = Request(
                question=part, history=req.history, k=req.k, mode=req.mode, method=req.method,
                dates=req.dates, recency_ref=req.recency_ref,
            )
            self.prepare.invoke(sub)
            for name, ms in sub.timings_ms.items():
                req.timings_ms[name] = req.timings_ms.get(name, 0.0) + ms
            if best is None or sub.relevance > best.relevance:
                best = sub
        assert best is not None
        req.standalone_question = best.standalone_question
        req.query_vector, req.passages = best.query_vector, best.passages
        req.candidates, req.relevance = best.candidates, best.relevance
        return req

    def refused(self, req: Request) -> bool:
        return req.relevance < self.calibration.gate_threshold or not req.candidates

    def stream(self, req: Request) -> Iterator[tuple[str, Any]]:
        """Events: ("step", (name, ms)), ("text", piece), ("answer", Answer)."""
        t0 = time.perf_counter()
        self._prepare(req)
        yield "step", ("retrieve", req.timings_ms["retrieve"])
        t = time.perf_counter()
        if self.refused(req):
            refusal = f"{REFUSAL_TEXT} {req.refusal_note}" if req.refusal_note else REFUSAL_TEXT
            final = Answer(
                question=req.question,
                standalone_question=req.standalone_question,
                answer=refusal,
                refused=True,
                mode=req.mode,
                contexts=req.passages,
                relevance=req.relevance,
            )
            yield "text", refusal
        else:
            produced: Answer | None = None
            for piece in self.answerers[req.mode].stream(req):
                if isinstance(piece, Answer):
                    produced = piece
                else:
                    yield "text", piece
            if produced is None:
                raise RuntimeError(f"the {req.mode} answerer produced no answer")
            final = produced
        if not final.refused and wants_recency(req.standalone_question):  # say which day "latest" rests on
            final.latest_source = max((c.published for c in final.citations if c.published), default=None)
        req.timings_ms["answer"] = (time.perf_counter() - t) * 1000
        req.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        final.timings_ms = dict(req.timings_ms)
        yield "answer", final

    def invoke(self, req: Request) -> Answer:
        for kind, value in self.stream(req):
            if kind == "answer":
                return value  # type: ignore[no-any-return]
        raise RuntimeError("the chain produced no answer")
