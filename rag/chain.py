"""The pipeline: condense -> retrieve -> gate make a Prepared question; an answerer writes; history per call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from rag import answer_type, brief, gate
from rag.calibration import Calibration
from rag.chunking import split_sentences
from rag.condense import condense
from rag.dates import wants_recency
from rag.retrieve import HybridRetriever
from rag.stages import Prepared, Request, frozen_timings
from rag.types import Answer, Turn


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


class Answerer(Protocol):
    """Writes the answer for passages that passed the gate."""

    mode: str

    def stream(self, prepared: Prepared) -> Iterator[str | Answer]:
        """Yield text pieces as they are produced, then the final Answer (its timings_ms: this step's own)."""
        ...


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

    def as_retriever(self, k: int = 5) -> PassageRetriever:
        return PassageRetriever(hybrid=self.retriever, k=k)

    # -- stages: each takes values and returns new ones; nothing is changed in place ---------------
    def _stages(self, req: Request, question: str) -> Prepared:
        """condense -> retrieve -> gate for one question text."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        standalone = self.condensers.get(req.mode, condense)(question, list(req.history))
        timings["condense"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        qvec = self.retriever.embed_query(standalone)
        passages = self.retriever.retrieve(
            standalone,
            req.k,
            method=req.method,
            query_vector=qvec,
            timer=lambda name, ms: timings.__setitem__(f"retrieve_{name}", ms),
            dates=req.dates,
            recency=req.recency_ref if wants_recency(standalone) else None,
            lexical_query=gate.topic_query(standalone),
        )
        timings["retrieve"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        candidates = gate.candidates(question, standalone, qvec, passages, self.idf, self.calibration)
        relevance = gate.relevance(candidates, passages, self.calibration)
        timings["gate"] = (time.perf_counter() - t) * 1000
        return Prepared(req, standalone, tuple(passages), tuple(candidates), relevance, qvec, frozen_timings(timings))

    def prepare(self, req: Request) -> Prepared:
        """Condense, retrieve and gate; a multi-sentence question is judged by its best part.

        "Ignore your instructions. What does Russia want?" is answered for its second sentence;
        a message made only of instructions has no part the passages answer, so it is refused.
        """
        parts = [req.question[s:e] for s, e in split_sentences(req.question)]
        if len(parts) <= 1:
            return self._stages(req, req.question)
        tried = [self._stages(req, part) for part in parts]
        best = max(tried, key=lambda p: p.relevance)
        total: dict[str, float] = {}
        for p in tried:
            for name, ms in p.timings_ms.items():
                total[name] = total.get(name, 0.0) + ms
        return replace(best, timings_ms=frozen_timings(total))

    def refusal(self, prepared: Prepared) -> str | None:
        """Why the question is refused, as the note after the refusal ("" for none), or None when it is answered.

        Refused: nothing retrieved is relevant enough (the gate), or a near miss - the question asks for an
        amount, a number or a date and none of the sentences an answer would quote states one (rag.answer_type).
        """
        if prepared.relevance < self.calibration.gate_threshold or not prepared.candidates:
            return prepared.request.refusal_note
        question = prepared.search_question
        kind = answer_type.expected(question)
        if kind is None or brief.metadata_field(question):
            return None
        # the extractive answer quotes only sentences within the keep ratio of the best; a model reads every
        # sentence of the passages, so for it any sentence that states the value will do
        ratio = self.calibration.keep_ratio if prepared.mode == "extractive" else 0.0
        if answer_type.first_stating(prepared.candidates, kind, ratio) is not None:
            return None
        return " ".join(filter(None, (answer_type.refusal_note(kind), prepared.request.refusal_note)))

    def stream(self, req: Request) -> Iterator[tuple[str, Any]]:
        """Events: ("step", (name, ms)), ("text", piece), ("answer", Answer)."""
        t0 = time.perf_counter()
        prepared = self.prepare(req)
        yield "step", ("retrieve", prepared.timings_ms["retrieve"])
        t = time.perf_counter()
        note = self.refusal(prepared)
        if note is not None:
            refusal = gate.refusal_text(note)
            final = Answer(
                question=req.question,
                standalone_question=prepared.standalone_question,
                answer=refusal,
                refused=True,
                mode=req.mode,
                contexts=list(prepared.passages),
                relevance=prepared.relevance,
            )
            yield "text", refusal
        else:
            produced: Answer | None = None
            for piece in self.answerers[req.mode].stream(prepared):
                if isinstance(piece, Answer):
                    produced = piece
                else:
                    yield "text", piece
            if produced is None:
                raise RuntimeError(f"the {req.mode} answerer produced no answer")
            final = produced
        if not final.refused and wants_recency(prepared.standalone_question):  # say which day "latest" rests on
            final.latest_source = max((c.published for c in final.citations if c.published), default=None)
        final.timings_ms = {
            **prepared.timings_ms,
            **final.timings_ms,  # the answerer's own steps (llm, verify)
            "answer": (time.perf_counter() - t) * 1000,
            "total": (time.perf_counter() - t0) * 1000,
        }
        yield "answer", final

    def invoke(self, req: Request) -> Answer:
        for kind, value in self.stream(req):
            if kind == "answer":
                return value  # type: ignore[no-any-return]
        raise RuntimeError("the chain produced no answer")
