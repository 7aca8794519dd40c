"""Ranking: how the hybrid retriever's candidates are fused and picked (RRF, sentence max-sim, article
aggregation, BM25 feedback terms, MMR). Pure functions over passages and vectors; no store, no model."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.text import terms
from rag.types import Passage

RRF_K = 60  # the constant of Cormack, Clarke and Buettcher (SIGIR 2009), used as published
# Chosen by the retrieval ablation on the H1 dev split at 2,000 articles (docs/benchmarks.md, `make ablate`):
# no diversity term. Copies are already taken out by the syndicated-copy collapse and the duplicate cut below,
# so MMR's diversity only pushed relevant chunks of the same story out of the top k (0.85 before: dev recall@5
# 0.759 -> 0.767, p95 44 -> 40 ms; every lambda tried was at or below 1.0's dev figure).
MMR_LAMBDA = 1.0
# Chosen when confirming the ablation's finalists at 5,386 articles (H1 dev 116 questions, docs/benchmarks.md):
# the third ranked list, passages by their best sentence's cosine to the question, at half the weight of dense
# and BM25: dev recall@5 0.741 -> 0.759 (at 2,000 articles it was one dev question below, 0.767 -> 0.759). A
# long chunk whose one answering sentence is diluted in the chunk vector is found by that sentence; the
# sentence vectors are stored at ingest, so it costs no model call (p95 57.8 -> 53.3 ms at 5,386).
W_SENTENCE = 0.5
W_TITLE = 0.0  # a fourth ranked list: passages by the idf-weighted share of the question's terms in their title
# Hand-set in the first version and kept because the golden eval and the retrieval benchmark hold with it:
DUPLICATE_COSINE = 0.97  # two chunks this close are the same text (a syndicated copy): never both returned
POOL_MIN = 10  # MMR picks k of the best max(pool_factor * k, POOL_MIN) fused candidates


@dataclass(frozen=True)
class Ranking:
    """The retriever's tunables. Defaults are what ships; each field is one row of the ablation table.

    candidates: passages each retriever returns before fusion; rrf_k, w_dense, w_bm25: reciprocal rank
    fusion; w_sentence: weight of a third ranked list, the passages ordered by their best sentence's cosine
    to the question (max-sim over the sentence vectors stored at ingest, no model call); w_title: weight of
    a fourth, the passages whose article title holds question terms, by the idf-weighted share of the
    question's terms in it (a headline names what its story is about); w_article: share
    of the fused scores of the same article's other candidates added to a passage; prf_terms / prf_docs:
    BM25 pseudo-relevance feedback (that many expansion terms from the top BM25 passages, 0 = off);
    pool_factor, pool_min: the MMR pool; mmr_lambda: 1.0 = no diversity.
    """

    candidates: int = 30
    rrf_k: int = RRF_K
    w_dense: float = 1.0
    w_bm25: float = 1.0
    w_sentence: float = W_SENTENCE
    w_title: float = W_TITLE
    w_article: float = 0.0
    prf_terms: int = 0
    prf_docs: int = 3
    pool_factor: int = 2
    pool_min: int = POOL_MIN
    mmr_lambda: float = MMR_LAMBDA
    duplicate_cosine: float = DUPLICATE_COSINE

    def pool_size(self, k: int) -> int:
        return max(self.pool_factor * k, self.pool_min)


def rrf_score(ranks: Iterable[int | None], k: int = RRF_K, weights: Sequence[float] | None = None) -> float:
    """Reciprocal rank fusion: the sum of w / (k + rank + 1) over the retrievers that found the item
    (ranks from 0; None where a retriever did not return it; weights default to 1)."""
    ranks = list(ranks)
    ws = list(weights) if weights is not None else [1.0] * len(ranks)
    return sum(w / (k + r + 1) for r, w in zip(ranks, ws, strict=True) if r is not None)


def sentence_maxsim(p: Passage, qvec: np.ndarray) -> float:
    """The best cosine between the question and one of the passage's stored sentence vectors (late
    interaction at sentence grain); the chunk's own cosine when it has none."""
    svecs = p.sentence_vectors
    if svecs is not None and len(svecs):
        return float(np.max(np.asarray(svecs) @ qvec))
    return float(p.dense_score or 0.0)


def title_match(question_terms: Sequence[str], title: str, idf: Callable[[str], float]) -> float:
    """The idf-weighted share of the question's (stemmed) terms that the title holds."""
    qt = set(question_terms)
    total = sum(idf(t) for t in qt)
    if not total:
        return 0.0
    return sum(idf(t) for t in qt & set(terms(title))) / total


def fuse(pool: list[Passage], qvec: np.ndarray, r: Ranking,
         title_of: Callable[[Passage], float] | None = None) -> None:
    """Set each passage's fused score in place: weighted RRF over dense, BM25 and (when weighted) sentence
    max-sim and title-match ranks (``title_of`` scores a passage's title), then (when weighted) a share of
    the same article's other candidates' scores."""
    sentence_rank: dict[str, int] = {}
    if r.w_sentence:
        ordered = sorted(pool, key=lambda p: -sentence_maxsim(p, qvec))
        sentence_rank = {p.chunk_id: i for i, p in enumerate(ordered)}
    title_rank: dict[str, int] = {}
    if r.w_title and title_of is not None:
        matched = [(title_of(p), p.chunk_id) for p in pool]
        ordered_ids = [cid for m, cid in sorted(matched, key=lambda t: -t[0]) if m > 0]
        title_rank = {cid: i for i, cid in enumerate(ordered_ids)}
    for p in pool:
        p.score = rrf_score(
            (p.dense_rank, p.bm25_rank, sentence_rank.get(p.chunk_id), title_rank.get(p.chunk_id)),
            r.rrf_k,
            (r.w_dense, r.w_bm25, r.w_sentence, r.w_title),
        )
    if r.w_article:
        per_article: dict[str, float] = {}
        for p in pool:
            per_article[p.article_id] = per_article.get(p.article_id, 0.0) + p.score
        for p in pool:
            p.score += r.w_article * (per_article[p.article_id] - p.score)


def feedback_terms(
    query: str, texts: Sequence[str], idf: Callable[[str], float], n: int
) -> list[str]:
    """Pseudo-relevance feedback: the n terms (not in the query) with the highest summed tf x idf over the
    top BM25 passages' texts."""
    own = set(terms(query))
    weight: dict[str, float] = {}
    for text in texts:
        for t, tf in Counter(terms(text)).items():
            if t not in own and len(t) > 2 and not t.isdigit():
                weight[t] = weight.get(t, 0.0) + tf * idf(t)
    return sorted(weight, key=lambda t: -weight[t])[:n]


def mmr(
    pool: list[Passage], vectors: dict[str, np.ndarray], k: int, lam: float = MMR_LAMBDA,
    duplicate_cosine: float = DUPLICATE_COSINE,
) -> list[Passage]:
    """Maximal marginal relevance over a pool sorted by fused score: each pick maximises
    lam * (score, min-max normalised over the pool) - (1 - lam) * (max cosine to the picks so far);
    a passage at duplicate_cosine or closer to a pick is never chosen."""
    if not pool:
        return []
    hi, lo = pool[0].score, pool[-1].score
    span = (hi - lo) or 1.0
    chosen: list[Passage] = []
    rest = list(pool)
    while rest and len(chosen) < k:
        best, best_val = None, -math.inf
        for p in rest:
            v = vectors.get(p.chunk_id)
            sim = (
                max((float(v @ vectors[c.chunk_id]) for c in chosen if c.chunk_id in vectors), default=0.0)
                if v is not None
                else 0.0
            )
            if sim >= duplicate_cosine:
                continue
            val = lam * (p.score - lo) / span - (1 - lam) * sim
            if val > best_val:
                best, best_val = p, val
        if best is None:
            break
        chosen.append(best)
        rest.remove(best)
    return chosen
