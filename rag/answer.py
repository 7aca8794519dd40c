"""The offline extractive answerer, the relevance gate and citation building."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.dates import iso_date
from rag.errors import ConfigError
from rag.sentences import quality
from rag.text import jaccard, terms
from rag.types import Citation, Passage, Sentence

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
REFUSAL_TEXT = "The articles I have don't answer this question."
_HEADING = re.compile(r"^[^a-z]*$")  # no lower-case letter: a heading or dateline


@dataclass(frozen=True)
class Calibration:
    """Sentence-scoring weights and the refusal gate (fitted on the golden dev split).

    The gate's statistic is max over candidate sentences of
    gate_w_semantic * cosine(question, sentence) + gate_w_lexical * IDF-weighted term coverage,
    plus gate_w_dense * the top passage's cosine; below gate_threshold the question is refused.
    """

    w_semantic: float = 0.6
    w_lexical: float = 0.25
    w_rank: float = 0.15
    keep_ratio: float = 0.75
    gate_w_semantic: float = 1.0
    gate_w_lexical: float = 0.25
    gate_w_dense: float = 0.0
    gate_threshold: float = 0.54
    mmr_lambda: float = 0.5  # broad questions: weight of a sentence's similarity to those already taken
    broad_keep_ratio: float = 0.75  # broad questions: keep floor as a share of the best sentence's score

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        """The fitted values; a missing or unreadable file is an error, never silent defaults."""
        try:
            data = json.loads(path.read_text())
            return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"The answerer's calibration {path} is missing or unreadable ({exc.__class__.__name__}) - restore "
                "it from git or refit it: python -m evals.calibrate."
            ) from exc


# Hand-set in the first version of the answerer and kept (not fitted; the golden dev split holds with them):
MIN_SENTENCE_CHARS = 25  # shorter "sentences" are fragments (a dateline, "Reuters", a caption) - never quoted
NEAR_DUPLICATE_JACCARD = 0.6  # two sentences sharing this share of their terms say the same thing: keep one


@dataclass
class Candidate:
    passage: Passage
    rank: int
    start: int  # article offsets
    end: int
    text: str
    semantic: float
    lexical: float
    score: float
    index: int = -1  # the sentence's position in its passage
    vec: np.ndarray | None = None  # its stored sentence vector
    needs_context: bool = False  # a bare pronoun or unnamed speaker: quotable only after the sentence before it


CONTEXT_WEIGHT = 0.5  # terms a follow-up borrowed from the conversation count half


def term_weights(question: str, standalone: str, idf: Callable[[str], float]) -> dict[str, float]:
    """IDF weight of each query term; terms only in the condensed context count less."""
    own = set(terms(question))
    return {t: idf(t) * (1.0 if t in own else CONTEXT_WEIGHT) for t in set(terms(standalone))}


def _coverage(weights: dict[str, float], sentence_terms: set[str]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t in sentence_terms) / total


def candidates(
    question: str,
    standalone: str,
    qvec: np.ndarray,
    passages: list[Passage],
    idf: Callable[[str], float],
    cal: Calibration,
) -> list[Candidate]:
    """Every sentence of the retrieved passages, scored against the question."""
    weights = term_weights(question, standalone, idf)
    top = max((p.score for p in passages), default=1.0) or 1.0
    out: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    for rank, p in enumerate(passages):
        svecs = p.sentence_vectors
        for j, (s, e) in enumerate(p.sentences):
            key = (p.article_id, s, e)
            text = p.text[s - p.start : e - p.start]
            if key in seen or len(text) < MIN_SENTENCE_CHARS or _HEADING.match(text):
                continue
            seen.add(key)
            q = quality(text)
            if q.reject:
                continue
            vec = None
            if svecs is not None and j < len(svecs) and np.any(svecs[j]):
                vec = svecs[j]
                sem = float(svecs[j] @ qvec)
            else:
                sem = float(p.dense_score or 0.0)
            lex = _coverage(weights, set(terms(text)))
            score = cal.w_semantic * sem + cal.w_lexical * lex + cal.w_rank * (p.score / top)
            out.append(Candidate(p, rank, s, e, text, sem, lex, score, j, vec, q.needs_context))
    out.sort(key=lambda c: -c.score)
    return out


def relevance(cands: list[Candidate], passages: list[Passage], cal: Calibration) -> float:
    """The refusal gate's statistic: how well the best sentence answers (no rank prior)."""
    best = max((cal.gate_w_semantic * c.semantic + cal.gate_w_lexical * c.lexical for c in cands), default=0.0)
    top_dense = max((p.dense_score or 0.0 for p in passages), default=0.0)
    return best + cal.gate_w_dense * top_dense


def select(cands: list[Candidate], max_sentences: int, cal: Calibration) -> list[Candidate]:
    """Best sentences, near-duplicates dropped, in reading order (articles by relevance)."""
    if not cands:
        return []
    floor = cands[0].score * cal.keep_ratio
    chosen: list[Candidate] = []
    chosen_terms: list[set[str]] = []
    for c in cands:
        if c.score < floor or len(chosen) >= max_sentences:
            break
        t = set(terms(c.text))
        overlaps = any(
            c.passage.article_id == o.passage.article_id and c.start < o.end and o.start < c.end for o in chosen
        )
        if overlaps or any(jaccard(t, o) > NEAR_DUPLICATE_JACCARD for o in chosen_terms):
            continue
        chosen.append(c)
        chosen_terms.append(t)
    article_order = {a: i for i, a in enumerate(dict.fromkeys(c.passage.article_id for c in chosen))}
    chosen.sort(key=lambda c: (article_order[c.passage.article_id], c.start))
    return chosen


def cite(chosen: list[Candidate]) -> tuple[str, list[Citation], list[Sentence]]:
    """Answer text with [n] markers; one citation per chunk, numbered by first use."""
    numbers: dict[str, int] = {}
    spans: dict[str, list[Candidate]] = {}
    sentences: list[Sentence] = []
    parts: list[str] = []
    for c in chosen:
        n = numbers.setdefault(c.passage.chunk_id, len(numbers) + 1)
        spans.setdefault(c.passage.chunk_id, []).append(c)
        sentences.append(Sentence(text=c.text, citations=[n], supported=True, support_score=1.0))
        parts.append(f"{c.text} [{n}]")
    citations = []
    for chunk_id, n in numbers.items():
        group = spans[chunk_id]
        p = group[0].passage
        start, end = min(c.start for c in group), max(c.end for c in group)
        citations.append(make_citation(n, p, start, end))
    return " ".join(parts), citations, sentences


def make_citation(n: int, p: Passage, start: int, end: int) -> Citation:
    """A citation whose quote is the passage text at article offsets [start, end)."""
    m = p.metadata
    return Citation(
        n=n,
        chunk_id=p.chunk_id,
        article_id=p.article_id,
        title=str(m.get("title", "")),
        title_derived=bool(m.get("title_derived", False)),
        source=str(m.get("source", "")),
        published=iso_date(m.get("published")),
        url=str(m.get("url", "")),
        quote=p.text[start - p.start : end - p.start],
        start=start,
        end=end,
        also_reported_by=list(p.also),
    )
