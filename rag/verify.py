"""Sentence-by-sentence verification of an LLM answer against the passages it cites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rag.answer import make_citation
from rag.citations import DraftSentence, Renumberer
from rag.types import Citation, Passage, Sentence

ATTACH_MARGIN = 0.1  # an unmarked sentence gets a citation only when support clearly clears the threshold


class Judge(Protocol):
    """Does the evidence support the claim? The interface of rag.judge.SupportJudge."""

    threshold: float

    def score(self, claim: str, evidence: str) -> float:
        """Support in [0, 1]."""
        ...

    def supported(self, claim: str, evidence: str) -> bool: ...


@dataclass
class Verified:
    sentences: list[Sentence]
    citations: list[Citation]


def _best_span(judge: Judge, claims: list[str], p: Passage) -> tuple[int, int]:
    """Article offsets of the passage sentence that best supports the claims (the whole chunk if none)."""
    best, span = -1.0, (p.start, p.end)
    for s, e in p.sentences:
        text = p.text[s - p.start : e - p.start]
        if not text.strip():
            continue
        sc = max(judge.score(c, text) for c in claims)
        if sc > best:
            best, span = sc, (s, e)
    return span


def verify(
    drafts: list[DraftSentence], passages: list[Passage], renumber: Renumberer, judge: Judge, attach: bool = True
) -> Verified:
    """Flag each sentence supported or not by its cited passages; attach a citation to an unmarked
    sentence that a retrieved passage clearly supports; build citations with verbatim quotes."""
    sentences: list[Sentence] = []
    claims_by_n: dict[int, list[str]] = {}
    for d in drafts:
        if d.passages:
            evidence = "\n".join(passages[i].text for i in d.passages)
            score = judge.score(d.text, evidence)
            ns = [n for n in (renumber(i + 1) for i in d.passages) if n is not None]
            sentences.append(Sentence(d.text, ns, supported=score >= judge.threshold, support_score=round(score, 4)))
        else:
            scored = [(judge.score(d.text, p.text), i) for i, p in enumerate(passages)]
            score, idx = max(scored, default=(0.0, -1))
            if attach and idx >= 0 and score >= judge.threshold + ATTACH_MARGIN:
                n = renumber.add(idx)
                sentences.append(Sentence(d.text, [n], supported=True, support_score=round(score, 4), attached=True))
            else:
                sentences.append(Sentence(d.text, [], supported=False, support_score=round(score, 4)))
        for n in sentences[-1].citations:
            claims_by_n.setdefault(n, []).append(d.text)
    citations = []
    for n in sorted(claims_by_n):
        p = passages[renumber.passage_of(n)]
        start, end = _best_span(judge, claims_by_n[n], p)
        citations.append(make_citation(n, p, start, end))
    return Verified(sentences, citations)
