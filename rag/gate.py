"""The relevance gate: every retrieved sentence scored against the question, and the answer-or-refuse statistic."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.calibration import Calibration
from rag.sentences import quality
from rag.text import terms
from rag.types import Passage

REFUSAL_TEXT = "The articles I have don't answer this question."
_HEADING = re.compile(r"^[^a-z]*$")  # no lower-case letter: a heading or dateline
# Hand-set in the first version of the answerer and kept (not fitted; the golden dev split holds with it):
MIN_SENTENCE_CHARS = 25  # shorter "sentences" are fragments (a dateline, "Reuters", a caption) - never quoted


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
# A broad question names the kind of facet it asks for with a frame word ("What does Russia want?", "What
# happened to Joann?", "What is the latest news on the ceasefire?"). Answers say it in other words (seeks,
# demands; closed, filed), and a sentence that repeats the frame word ("if you want to know the truth", "for the
# latest news, view our story") is rarely the answer. So those frame words are not matched lexically: the topic
# words are, and the sentence vectors judge the facet. Nouns that also mark a broad question (risks, goals,
# demands, changes) stay matched: answers do use them ("very high financial risks").
# "do" counts as the verb ("What did Booker do?"), not as an auxiliary ("How did X describe ...?"); a comparison
# ("How does X's view differ from Y's?") has two sides to cover.
_BROAD_WORDS = (r"wants?|wanted|happen\w*|risks?|known|know|about|chang\w*|latest|news|goals?|demands?|do|doing"
                r"|situation|state|stand|differ\w*|compare\w*")
# "What kind of state does Moscow want ...?" asks for one attribute: a factoid, not a broad question.
BROAD = re.compile(rf"^\s*(what|why|how|tell me)\b(?!\s+(kinds?|types?|sorts?)\s+of\b).*\b({_BROAD_WORDS})\b",
                   re.IGNORECASE)
_FRAME_WORD = re.compile(r"\b(wants?|wanted|wanting|happen\w*|known|know|about|latest|news|doing|situation|stand)\b",
                         re.IGNORECASE)


def frame_terms(question: str) -> set[str]:
    """The terms of a broad question's frame words (none for other questions)."""
    if not BROAD.search(question):
        return set()
    # a capitalised one inside the question is a name ("News Corp", "the Situation Room"), not a frame word
    return {t for m in _FRAME_WORD.finditer(question) if m.start() == 0 or not m.group()[0].isupper()
            for t in terms(m.group())}


def topic_query(question: str) -> str:
    """A broad question without its frame words, for lexical search ("What does Russia want?" -> "What does
    Russia ?"): BM25 should find the topic, not sentences that repeat "want" or "latest news". Other questions,
    and one that is only frame words, come back unchanged."""
    if not BROAD.search(question):
        return question
    out = _FRAME_WORD.sub(lambda m: m.group() if m.start() and m.group()[0].isupper() else "", question)
    return out if terms(out) else question


def term_weights(question: str, standalone: str, idf: Callable[[str], float]) -> dict[str, float]:
    """IDF weight of each query term; terms only in the condensed context count less; a broad question's
    frame words not at all, unless they are all it has."""
    own = set(terms(question))
    frame = frame_terms(standalone) | frame_terms(question)
    weights = {t: idf(t) * (1.0 if t in own else CONTEXT_WEIGHT) for t in set(terms(standalone))}
    topic = {t: w for t, w in weights.items() if t not in frame}
    return topic or weights


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


def refusal_text(note: str = "") -> str:
    """The refusal, with what a date filter left when there is one (e.g. "Only 3 of the 40 articles are ...")."""
    return f"{REFUSAL_TEXT} {note}" if note else REFUSAL_TEXT
