"""The answer as a news brief: facet-level MMR over sentences, grouped by article under source and date."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rag.calibration import Calibration
from rag.citations import make_citation
from rag.dates import iso_date
from rag.gate import BROAD, Candidate
from rag.sentences import quality
from rag.text import jaccard, terms
from rag.types import Citation, Passage, Sentence

# Hand-set in the first version of the answerer and kept (not fitted; the golden dev split holds with it):
NEAR_DUPLICATE_JACCARD = 0.6  # two sentences sharing this share of their terms say the same thing: keep one
BROAD_MAX_SENTENCES = 6  # issue 15: "up to about 6 sentences" for a broad question with rich evidence
_AUTHOR_Q = re.compile(r"\bwho (wrote|authored|reported|is the author)\b|\bauthor of\b|\bbyline\b", re.IGNORECASE)
_PUBLISHED_Q = re.compile(r"\bwhen was\b.*\b(published|written|posted|released)\b|\bpublication date\b", re.IGNORECASE)
_PLACE_Q = re.compile(r"\bwhere (was|is|were) (it|this|that|the (article|story|report|piece))\b.*"
                      r"\b(published|reported|written|filed|datelined|from)\b|\bdateline\b", re.IGNORECASE)
_SOURCE_Q = re.compile(r"\b(which|what) (outlet|publication|newspaper|site|website|source|news organi[sz]ation)\b",
                       re.IGNORECASE)


def is_broad(question: str) -> bool:
    """Questions with several facets ("What does X want?", "What happened to Y?") get a longer answer."""
    return bool(BROAD.search(question))


def metadata_field(question: str) -> str | None:
    """The article metadata a question asks for: author, published, place or source (None for other questions)."""
    for field_name, pattern in (
        ("author", _AUTHOR_Q), ("published", _PUBLISHED_Q), ("place", _PLACE_Q), ("source", _SOURCE_Q)
    ):
        if pattern.search(question):
            return field_name
    return None


def _similarity(a: Candidate, b: Candidate) -> float:
    if a.vec is not None and b.vec is not None:
        return float(a.vec @ b.vec)
    return jaccard(set(terms(a.text)), set(terms(b.text)))


def antecedent(c: Candidate) -> Candidate | None:
    """The sentence before c in its passage, when it can be quoted and names what c's pronoun refers to."""
    p, j = c.passage, c.index
    if j <= 0 or j > len(p.sentences):
        return None
    s, e = p.sentences[j - 1]
    text = p.text[s - p.start : e - p.start]
    q = quality(text)
    if q.reject or q.needs_context:
        return None
    return replace(c, start=s, end=e, text=text, index=j - 1, needs_context=False)


def select(cands: list[Candidate], max_sentences: int, cal: Calibration, broad: bool) -> list[Candidate]:
    """Maximal marginal relevance over the candidates above the keep floor.

    A factoid takes up to max_sentences by score (lambda 0: near-duplicates dropped only); a broad question
    takes up to BROAD_MAX_SENTENCES, each penalised by its similarity to those already taken, so that
    distinct facets across articles win over restatements. A pronoun-subject sentence comes with the
    sentence before it, or not at all.
    """
    if not cands:
        return []
    limit = BROAD_MAX_SENTENCES if broad else max_sentences
    lam = cal.mmr_lambda if broad else 0.0
    floor = cands[0].score * (cal.broad_keep_ratio if broad else cal.keep_ratio)
    pool = [c for c in cands if c.score >= floor]
    chosen: list[Candidate] = []
    while pool and len(chosen) < limit:
        def gain(c: Candidate) -> float:
            return c.score - lam * max((_similarity(c, o) for o in chosen), default=0.0)

        best = max(pool, key=gain)
        pool.remove(best)
        best_terms = set(terms(best.text))
        if any(_overlaps(best, o) or jaccard(best_terms, set(terms(o.text))) > NEAR_DUPLICATE_JACCARD for o in chosen):
            continue
        if best.needs_context:
            ante = antecedent(best)
            if ante is None or len(chosen) + 2 > limit:
                continue
            if not any(_overlaps(ante, o) for o in chosen):
                chosen.append(ante)
        chosen.append(best)
    return chosen


def _overlaps(a: Candidate, b: Candidate) -> bool:
    return a.passage.article_id == b.passage.article_id and a.start < b.end and b.start < a.end


def group_label(p: Passage) -> str:
    """ "usatoday.com, 2025-02-24" - the source (else the title) and the date (or "undated")."""
    m = p.metadata
    source = str(m.get("source") or "") or str(m.get("title") or "unknown source")
    return f"{source}, {iso_date(m.get('published')) or 'undated'}"


@dataclass
class Brief:
    text: str
    citations: list[Citation]
    sentences: list[Sentence]
    groups: list[tuple[str, list[int]]]  # (label, indexes into sentences)


def compose(chosen: list[Candidate], newest_first: bool) -> Brief:
    """Sentences grouped by article (articles by best score, or newest first), each group led by its label."""
    by_article: dict[str, list[Candidate]] = {}
    for c in chosen:
        by_article.setdefault(c.passage.article_id, []).append(c)
    order = list(by_article)
    if newest_first:
        order.sort(key=lambda a: iso_date(by_article[a][0].passage.metadata.get("published")) or "", reverse=True)
    numbers: dict[str, int] = {}
    spans: dict[str, list[Candidate]] = {}
    sentences: list[Sentence] = []
    groups: list[tuple[str, list[int]]] = []
    parts: list[str] = []
    for aid in order:
        group = sorted(by_article[aid], key=lambda c: c.start)
        label = group_label(group[0].passage)
        idx: list[int] = []
        pieces: list[str] = []
        for c in group:
            n = numbers.setdefault(c.passage.chunk_id, len(numbers) + 1)
            spans.setdefault(c.passage.chunk_id, []).append(c)
            idx.append(len(sentences))
            sentences.append(Sentence(text=c.text, citations=[n], supported=True, support_score=1.0))
            pieces.append(f"{c.text} [{n}]")
        groups.append((label, idx))
        parts.append(f"{label}: " + " ".join(pieces))
    citations = []
    for chunk_id, n in numbers.items():
        g = spans[chunk_id]
        citations.append(make_citation(n, g[0].passage, min(c.start for c in g), max(c.end for c in g)))
    return Brief("\n\n".join(parts), citations, sentences, groups)


def metadata_answer(field_name: str, cands: list[Candidate]) -> Brief | None:
    """Who wrote / when / where published, from the best-matching article's metadata (None when unknown).

    The citation quotes the byline (or dateline) span when a retrieved passage holds one; a fact known only from
    metadata is cited with an empty quote and `field` naming the metadata field, never with invented text.
    """
    if not cands:
        return None
    p = cands[0].passage
    m = p.metadata
    value = iso_date(m.get("published")) if field_name == "published" else str(m.get(field_name) or "")
    if not value:
        return None
    title = str(m.get("title") or "The article")
    text = {
        "author": f"“{title}” was written by {value}.",
        "published": f"“{title}” was published on {value}.",
        "source": f"“{title}” was published by {value}.",
        "place": f"“{title}” was reported from {value}.",
    }[field_name]
    cit = make_citation(1, p, p.start, p.start)
    cit.quote, cit.start, cit.end, cit.field = "", 0, 0, field_name
    if field_name in ("author", "place"):
        for q in [c for c in cands if c.passage.article_id == p.article_id]:
            for s, e in q.passage.sentences:
                span = q.passage.text[s - q.passage.start : e - q.passage.start]
                if value in span:
                    cit = make_citation(1, q.passage, s, e)
                    cit.field = field_name
                    break
    sentence = Sentence(text=text, citations=[1], supported=True, support_score=1.0)
    label = group_label(p)
    return Brief(f"{label}: {text} [1]", [cit], [sentence], [(label, [0])])
