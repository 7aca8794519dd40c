"""Sentence-by-sentence verification of an LLM answer against the passages it cites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rag.citations import DraftSentence, Renumberer, make_citation
from rag.judge_features import PASSAGE_BREAK
from rag.types import Citation, Passage, Sentence

ATTACH_MARGIN = 0.1  # an unmarked sentence gets a citation only when support clearly clears the threshold


class Judge(Protocol):
    """Does the evidence support the claim? The interface of rag.judge.SupportJudge."""

    threshold: float

    def score(self, claim: str, evidence: str) -> float:
        """Support in [0, 1]."""
        ...

    def score_answer(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Support of each (sentence, evidence) of one answer, judged together (the writer's style is shared)."""
        ...

    def supported(self, claim: str, evidence: str) -> bool: ...

    def verdict(self, score: float) -> str:
        """ "supported", "uncertain" (the calibrated band around the threshold) or "not supported"."""
        ...

    def sentence_scores(self, claims: list[str], evidence: str) -> list[float]:
        """Per sentence of the evidence (as the judge splits it), how well the claims align with it."""
        ...

    def evidence_sentences(self, evidence: str) -> list[str]: ...

    def prepare(self, claims: list[str], evidences: list[str]) -> None:
        """Encode an answer's sentences and passages once, in batches, before scoring."""
        ...


@dataclass
class Verified:
    sentences: list[Sentence]
    citations: list[Citation]


def _best_span(judge: Judge, claims: list[str], p: Passage) -> tuple[int, int]:
    """Article offsets of the passage sentence that best supports the claims (the whole chunk if none).

    The judge scores the sentences of the passage it has already encoded, so quoting costs no model run."""
    scores = judge.sentence_scores(claims, p.text)
    sentences = judge.evidence_sentences(p.text)
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        at = p.text.find(sentences[i])
        if at >= 0 and sentences[i].strip():
            return p.start + at, p.start + at + len(sentences[i])
    return p.start, p.end


def verify(
    drafts: list[DraftSentence], passages: list[Passage], renumber: Renumberer, judge: Judge, attach: bool = True
) -> Verified:
    """Give each sentence a verdict on its cited passages (supported, uncertain, not supported); attach a
    citation to an unmarked sentence that a retrieved passage clearly supports; build citations with verbatim
    quotes."""
    sentences: list[Sentence] = []
    claims_by_n: dict[int, list[str]] = {}
    judge.prepare([d.text for d in drafts], [p.text for p in passages])
    cited_scores = iter(judge.score_answer(  # the cited sentences, in order, judged together
        [(d.text, PASSAGE_BREAK.join(passages[i].text for i in d.passages)) for d in drafts if d.passages]
    ))
    for d in drafts:
        if d.passages:
            score = next(cited_scores)
            ns = [n for n in (renumber(i + 1) for i in d.passages) if n is not None]
            sentences.append(Sentence(d.text, ns, support_score=round(score, 4), verdict=judge.verdict(score)))
        else:
            scored = [(judge.score(d.text, p.text), i) for i, p in enumerate(passages)]
            score, idx = max(scored, default=(0.0, -1))
            verdict = judge.verdict(score)
            if attach and idx >= 0 and verdict == "supported" and score >= judge.threshold + ATTACH_MARGIN:
                n = renumber.add(idx)
                sentences.append(Sentence(d.text, [n], support_score=round(score, 4), attached=True))
            else:  # nothing cited: at best uncertain, never shown as supported
                verdict = "uncertain" if verdict == "supported" else verdict
                sentences.append(Sentence(d.text, [], support_score=round(score, 4), verdict=verdict))
        for n in sentences[-1].citations:
            claims_by_n.setdefault(n, []).append(d.text)
    citations = []
    for n in sorted(claims_by_n):
        p = passages[renumber.passage_of(n)]
        start, end = _best_span(judge, claims_by_n[n], p)
        citations.append(make_citation(n, p, start, end))
    return Verified(sentences, citations)
