"""Plain data carried from files to answers: Article, Chunk, Passage, Citation, Answer, DateFilter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from dataclasses import field as dataclass_field  # Citation has a member named `field`
from datetime import date
from typing import Any


@dataclass(frozen=True)
class DateFilter:
    """Which publication days a question may see: since <= day <= min(until, as_of); undated never pass.

    Build one with rag.dates.make_filter (it validates); DateFilter() filters nothing.
    """

    since: date | None = None
    until: date | None = None
    as_of: date | None = None

    @property
    def upper(self) -> date | None:
        bounds = [d for d in (self.until, self.as_of) if d is not None]
        return min(bounds) if bounds else None

    @property
    def active(self) -> bool:
        return self.since is not None or self.upper is not None

    def describe(self) -> str:
        """For messages, e.g. "published 2025-01-01 to 2025-03-18"."""
        lo, hi = self.since, self.upper
        if lo and hi:
            return f"published {lo.isoformat()} to {hi.isoformat()}"
        if lo:
            return f"published on or after {lo.isoformat()}"
        if hi:
            return f"published on or before {hi.isoformat()}"
        return "any date"


@dataclass(frozen=True)
class Article:
    """One article's text and the metadata it really has (nothing invented)."""

    article_id: str
    text: str
    title: str
    title_derived: bool
    source: str = ""
    published: str = ""  # ISO YYYY-MM-DD, or "" when the article states no (parseable) date
    url: str = ""
    author: str = ""
    place: str = ""  # the dateline's place ("BUDAPEST", "KYIV, Ukraine"), when the text opens with one
    source_path: str = ""
    content_hash: str = ""
    published_raw: str = ""  # the date as the file wrote it (not stored): names an unparseable one


@dataclass(frozen=True)
class Chunk:
    """A slice of an article with its character offsets and sentence spans (article offsets)."""

    chunk_id: str
    article_id: str
    index: int
    text: str
    start: int
    end: int
    sentences: tuple[tuple[int, int], ...]
    article: Article


@dataclass
class Passage:
    """A retrieved chunk with its scores and ranks."""

    chunk_id: str
    article_id: str
    text: str
    start: int
    end: int
    sentences: list[tuple[int, int]]
    metadata: dict[str, Any]
    score: float = 0.0
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None
    sentence_vectors: Any = None  # numpy array (n_sentences, dim) or None
    # the other articles of its syndicated-copy cluster, when collapsed into this passage's slot:
    # [{article_id, source, title, url, published}] (rag.syndication)
    also: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(self.metadata.get("title", ""))


@dataclass
class Citation:
    n: int
    chunk_id: str
    article_id: str
    title: str
    title_derived: bool
    source: str
    published: str | None  # ISO YYYY-MM-DD or None: never guessed
    url: str
    quote: str
    start: int
    end: int
    field: str | None = None  # a fact known only from this metadata field (then quote is "" and start == end == 0)
    # other articles carrying the same story (syndicated copies, updated versions); the quote is from article_id
    also_reported_by: list[dict[str, Any]] = dataclass_field(default_factory=list)


@dataclass
class Sentence:
    """One answer sentence. verdict: "supported" | "uncertain" | "not supported" (the judge's calibrated band);
    supported is true only when the verdict is "supported". Extractive sentences are verbatim quotes."""

    text: str
    citations: list[int]
    supported: bool = True
    support_score: float = 1.0
    attached: bool = False
    verdict: str = "supported"

    def __post_init__(self) -> None:
        if not self.supported and self.verdict == "supported":
            self.verdict = "not supported"
        self.supported = self.verdict == "supported"


@dataclass
class Turn:
    """One past exchange of a conversation, owned by the caller."""

    question: str
    answer: str
    standalone_question: str = ""


@dataclass
class Answer:
    question: str
    standalone_question: str
    answer: str
    refused: bool
    mode: str
    citations: list[Citation] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    contexts: list[Passage] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    relevance: float = 0.0
    latest_source: str | None = None  # for "latest"-style questions: the newest cited publication day (ISO)

    def to_dict(self) -> dict[str, Any]:
        """The answer object of the contracts."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "refused": self.refused,
            "mode": self.mode,
            "citations": [asdict(c) for c in self.citations],
            "sentences": [asdict(s) for s in self.sentences],
            "contexts": [
                {
                    "chunk_id": p.chunk_id,
                    "article_id": p.article_id,
                    "text": p.text,
                    "score": round(p.score, 6),
                    "dense_score": None if p.dense_score is None else round(p.dense_score, 6),
                    "bm25_score": None if p.bm25_score is None else round(p.bm25_score, 6),
                    "title": p.title,
                    "also_reported_by": list(p.also),
                }
                for p in self.contexts
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "relevance": round(self.relevance, 4),
            "latest_source": self.latest_source,
        }
