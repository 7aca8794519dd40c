"""Sentence-by-sentence verification of an LLM answer against the passages it cites."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.answer import make_citation
from rag.chunking import split_sentences
from rag.citations import DraftSentence, Renumberer
from rag.embeddings import LocalMiniLMEmbeddings
from rag.text import terms, words
from rag.types import Citation, Passage, Sentence

ATTACH_MARGIN = 0.1  # an unmarked sentence gets a citation only when support clearly clears the threshold


class Judge(Protocol):
    """Does the evidence support the claim? The interface of rag.judge.SupportJudge."""

    threshold: float

    def score(self, claim: str, evidence: str) -> float:
        """Support in [0, 1]."""
        ...

    def supported(self, claim: str, evidence: str) -> bool:
        ...


_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]+")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


def key_tokens(claim: str) -> set[str]:
    """Names and numbers of a claim (capitalised content words, digits): what a model invents."""
    keys = {w for m in _CAPITALISED.findall(claim) for w in words(m)}
    keys |= {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(claim)}
    return {k for k in keys if k and (re.fullmatch(r"[\d.]+", k) or terms(k))}


class InterimJudge:
    """Lexical coverage of the claim by the evidence, times name/number agreement, plus MiniLM cosine.

    Stands in for rag.judge.SupportJudge until that lands; same interface.
    """

    threshold = 0.6

    def __init__(self, embedder: LocalMiniLMEmbeddings, cache_size: int = 4096) -> None:
        self.embedder = embedder
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                if len(self._cache) + len(missing) > self._cache_size:
                    self._cache.clear()
                for t, v in zip(missing, self.embedder.encode(missing), strict=True):
                    self._cache[t] = v
            return np.stack([self._cache[t] for t in texts])

    def score(self, claim: str, evidence: str) -> float:
        claim_terms = set(terms(claim))
        if not claim_terms or not evidence.strip():
            return 0.0
        evidence_terms = set(terms(evidence))
        coverage = len(claim_terms & evidence_terms) / len(claim_terms)
        sents = [evidence[s:e] for s, e in split_sentences(evidence)] or [evidence]
        vecs = self._vectors([claim, *sents])
        cosine = max(0.0, float(np.max(vecs[1:] @ vecs[0])))
        score = 0.5 * coverage + 0.5 * cosine
        keys = key_tokens(claim)
        if keys:
            evidence_words = set(words(evidence)) | {n.replace(",", "") for n in _NUMBER.findall(evidence)}
            missing = [k for k in keys if k not in evidence_words]
            score *= 1.0 - 0.6 * len(missing) / len(keys)
            if any(re.fullmatch(r"[\d.]+", k) for k in missing):  # an invented number
                score *= 0.6
        return float(min(1.0, max(0.0, score)))

    def supported(self, claim: str, evidence: str) -> bool:
        return self.score(claim, evidence) >= self.threshold


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
