"""The pipeline's immutable values: a question as asked (Request) and as prepared for an answerer (Prepared)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rag.types import DateFilter, Passage, Turn

if TYPE_CHECKING:
    from rag.gate import Candidate
    from rag.retrieve import Method


@dataclass(frozen=True)
class Request:
    """One question with the caller's conversation and options, checked by the service."""

    question: str
    history: tuple[Turn, ...] = ()
    k: int = 5
    mode: str = "extractive"
    method: Method = "hybrid"
    dates: DateFilter | None = None  # publication-day filter for both retrievers
    recency_ref: date | None = None  # "latest"-style questions get a recency prior relative to this day
    refusal_note: str = ""  # appended to a refusal (e.g. what the date filter left)


@dataclass(frozen=True)
class Prepared:
    """What condense -> retrieve -> gate made of a Request: the answerers' only input.

    passages are the retrieved chunks in rank order, candidates the gate's scored sentences, relevance the
    gate's verdict (compared with the calibrated threshold), timings_ms what each stage took.
    """

    request: Request
    standalone_question: str
    passages: tuple[Passage, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    relevance: float = 0.0
    query_vector: Any = None  # numpy array (dim,)
    timings_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def question(self) -> str:
        return self.request.question

    @property
    def mode(self) -> str:
        return self.request.mode

    @property
    def search_question(self) -> str:
        """The question retrieval and answering work from (the follow-up rewritten when there is history)."""
        return self.standalone_question or self.request.question


def frozen_timings(timings: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(timings))
