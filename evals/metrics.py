"""Eval metrics: one class each, with pure scoring functions (no service, no I/O)."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

Supports = Callable[[str, str], bool]  # (claim, evidence) -> supported?
SupportsAnswer = Callable[[Sequence[tuple[str, str]]], list[bool]]  # one answer's (claim, evidence) pairs, together
_MARKER = re.compile(r"\s*\[\d+\]")


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


def normalise(text: str) -> str:
    """Lower case, curly quotes straightened, white space collapsed."""
    t = text.lower().replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'")
    return " ".join(t.split())


# -- pure scoring functions -------------------------------------------------------
def recall_at_k(relevant: Sequence[bool], k: int) -> float:
    return float(any(relevant[:k]))


def reciprocal_rank(relevant: Sequence[bool]) -> float:
    return next((1.0 / (i + 1) for i, r in enumerate(relevant) if r), 0.0)


def ndcg_at_k(relevant: Sequence[bool], k: int) -> float:
    """Binary-gain nDCG; the ideal ranking puts the relevant passages found first (at least one)."""
    dcg = sum(1.0 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)
    n_ideal = max(1, min(k, sum(bool(r) for r in relevant)))
    return dcg / sum(1.0 / math.log2(i + 2) for i in range(n_ideal))


def key_fact_recall(text: str, key_facts: Sequence[Sequence[str]]) -> float:
    """Share of key-fact groups of which at least one acceptable string occurs in text."""
    if not key_facts:
        return 1.0
    low = normalise(text)
    return sum(any(normalise(s) in low for s in group) for group in key_facts) / len(key_facts)


def _squad_tokens(text: str) -> list[str]:
    t = normalise(text)
    t = "".join(ch for ch in t if ch not in set(string.punctuation) | {'"', "'"})
    return [w for w in t.split() if w not in {"a", "an", "the"}]


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 (lower case, punctuation and articles dropped)."""
    p, g = _squad_tokens(prediction), _squad_tokens(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return float(p == g)
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def passage_relevant(passage: str, evidence: str, min_share: float = 0.5) -> bool:
    """Does the passage hold the gold evidence (verbatim, or at least min_share of its words in order)?"""
    p, e = normalise(passage), normalise(evidence)
    if not e:
        return False
    if e in p:
        return True
    ew = e.split()
    need = max(1, math.ceil(len(ew) * min_share))
    return any(" ".join(ew[i : i + need]) in p for i in range(len(ew) - need + 1))


def alce_citation_scores(
    sentences: Sequence[tuple[str, Sequence[str]]], supports: Supports
) -> tuple[float, float, int, int]:
    """ALCE citation recall and precision. Each sentence comes with the passages it cites.

    Recall: share of sentences that the concatenation of their cited passages supports.
    Precision: a citation counts when the sentence is supported by its citations and the citation
    is not irrelevant (irrelevant: it alone does not support the sentence, and the others without it
    still do). Returns (recall, precision, n_sentences, n_citations).
    """
    rec_hits, prec_hits, n_cit = 0, 0, 0
    for text, cited in sentences:
        n_cit += len(cited)
        joint = bool(cited) and supports(text, "\n".join(cited))
        rec_hits += joint
        if not joint:
            continue
        if len(cited) == 1:
            prec_hits += 1
            continue
        for i, c in enumerate(cited):
            rest = [x for j, x in enumerate(cited) if j != i]
            irrelevant = not supports(text, c) and supports(text, "\n".join(rest))
            prec_hits += not irrelevant
    n = len(sentences)
    return (rec_hits / n if n else 0.0), (prec_hits / n_cit if n_cit else 0.0), n, n_cit


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; nan when there are no values (the one definition:
    the eval reports and the benchmarks use it)."""
    return float(np.percentile(np.array(values, dtype=float), q)) if len(values) else float("nan")


_PRONOUN_START = re.compile(
    r"^[\"“‘'(\s]*(he|she|it|they|this|these|those|that|we|i|his|her|its|their)\b", re.IGNORECASE
)
_TERMINAL = re.compile(r"[.!?…][\"”’')\]]*$")
_DIGITS = re.compile(r"\d+")


def line_key(text: str) -> str:
    """A line as the boilerplate detector compares it: normalised, digits collapsed."""
    return _DIGITS.sub("0", normalise(text)).strip(" .")


def repeated_lines(articles: Sequence[tuple[str, str]], min_stories: int = 3) -> frozenset[str]:
    """Lines that occur in at least `min_stories` unrelated articles of one site: boilerplate learned from data.

    `articles` are (site, text). Articles of one site sharing three or more lines are versions of one story
    (syndicated copies) and count once, so a story's repeated paragraphs are not mistaken for boilerplate.
    """
    by_site: dict[str, list[set[str]]] = {}
    for site, text in articles:
        lines = {line_key(ln) for ln in text.splitlines() if len(ln.strip()) >= 12}
        by_site.setdefault(site, []).append(lines)
    out: set[str] = set()
    for docs in by_site.values():
        story = list(range(len(docs)))  # each article's story: the lowest index it shares >= 3 lines with
        for i in range(len(docs)):
            for j in range(i):
                if len(docs[i] & docs[j]) >= 3:
                    story[i] = story[j]
                    break
        stories: dict[str, set[int]] = {}
        for i, lines in enumerate(docs):
            for ln in lines:
                stories.setdefault(ln, set()).add(story[i])
        out |= {ln for ln, s in stories.items() if len(s) >= min_stories}
    return frozenset(out)


def boilerplate_flags(sentences: Sequence[tuple[str, Sequence[int]]], repeated: frozenset[str]) -> list[bool]:
    """Per answer sentence: boilerplate (a line repeated across a site's stories, or inside one), a heading
    (no terminal punctuation, or a question), or a quote/claim whose subject is a bare pronoun that no
    earlier sentence of the same citation introduces."""
    flags = []
    for i, (text, cites) in enumerate(sentences):
        key = line_key(text)
        boiler = bool(key) and (key in repeated or any(len(r) >= 25 and r in key for r in repeated))
        heading = not _TERMINAL.search(text.strip()) or text.strip().rstrip("\"”’') ").endswith("?")
        pronoun = bool(_PRONOUN_START.match(text)) and not (i > 0 and set(sentences[i - 1][1]) & set(cites))
        flags.append(boiler or heading or pronoun)
    return flags


# -- metric classes ---------------------------------------------------------------
@dataclass
class ItemResult:
    """What one golden item produced, as the metrics see it (plain data)."""

    refuse: bool
    refused: bool
    answer: str
    key_facts: Sequence[Sequence[str]]
    evidence: str
    contexts: Sequence[str]  # retrieved passage texts, in rank order
    sentences: Sequence[tuple[str, Sequence[int]]]  # answer sentences with their [n]s
    citations: dict[int, tuple[str, str]]  # n -> (quote, cited passage text)
    quotes_exact: Sequence[bool]  # per citation: article.text[start:end] == quote
    latency_ms: float
    kind: str = ""  # the golden item's kind (broad, factoid, ...)


class Metric:
    """One metric: `score(item)` gives a value or None (not applicable); `aggregate` averages."""

    name: ClassVar[str]
    quality: ClassVar[bool] = True  # latency metrics are reported, never a pass/fail
    lower_is_better: ClassVar[bool] = False

    def score(self, item: ItemResult) -> float | None:
        raise NotImplementedError

    def aggregate(self, items: Sequence[ItemResult], scores: Sequence[float | None]) -> float | None:
        vals = [s for s in scores if s is not None]
        return float(np.mean(vals)) if vals else None


def _answerable(item: ItemResult) -> bool:
    return not item.refuse and bool(item.evidence)


def _relevance(item: ItemResult) -> list[bool] | None:
    """Which retrieved passages hold the gold evidence (None for items without evidence)."""
    if not _answerable(item):
        return None
    return [passage_relevant(c, item.evidence) for c in item.contexts]


@dataclass
class RetrievalRecall(Metric):
    k: int = 5
    name: ClassVar[str] = "retrieval_recall_at_k"

    def score(self, item: ItemResult) -> float | None:
        rel = _relevance(item)
        return None if rel is None else recall_at_k(rel, self.k)


class RetrievalMRR(Metric):
    name = "retrieval_mrr"

    def score(self, item: ItemResult) -> float | None:
        rel = _relevance(item)
        return None if rel is None else reciprocal_rank(rel)


@dataclass
class RetrievalNDCG(Metric):
    k: int = 5
    name: ClassVar[str] = "retrieval_ndcg"

    def score(self, item: ItemResult) -> float | None:
        rel = _relevance(item)
        return None if rel is None else ndcg_at_k(rel, self.k)


class KeyFactRecall(Metric):
    name = "answer_key_fact_recall"

    def score(self, item: ItemResult) -> float | None:
        if item.refuse:
            return None
        return 0.0 if item.refused else key_fact_recall(strip_markers(item.answer), item.key_facts)


class FacetRecall(Metric):
    """Key-fact recall of the broad questions only: each key-fact group is one facet of the story."""

    name = "answer_facet_recall"

    def score(self, item: ItemResult) -> float | None:
        if item.refuse or item.kind != "broad":
            return None
        return 0.0 if item.refused else key_fact_recall(strip_markers(item.answer), item.key_facts)


@dataclass
class BoilerplateRate(Metric):
    """Share of answer sentences that are boilerplate, headings or unresolved pronoun quotes (lower is better)."""

    repeated: frozenset[str] = frozenset()
    name: ClassVar[str] = "answer_boilerplate_rate"
    lower_is_better: ClassVar[bool] = True

    def score(self, item: ItemResult) -> float | None:
        if item.refused or not item.sentences:
            return None
        return float(np.mean(boilerplate_flags(item.sentences, self.repeated)))


class TokenF1(Metric):
    name = "answer_token_f1"

    def score(self, item: ItemResult) -> float | None:
        if not _answerable(item):
            return None
        if item.refused:
            return 0.0
        # the answer's sentences, without the source-and-date labels that lead each group of a news brief
        said = " ".join(t for t, _ in item.sentences) if item.sentences else strip_markers(item.answer)
        return token_f1(said, item.evidence)


@dataclass
class Faithfulness(Metric):
    """Share of answer sentences supported by the quotes they cite (the text a user is shown)."""

    supports: Supports
    supports_answer: SupportsAnswer | None = None  # the judge as the app applies it: an answer's sentences together
    name: ClassVar[str] = "faithfulness"

    def score(self, item: ItemResult) -> float | None:
        if item.refused or not item.sentences:
            return None
        pairs = [(text, "\n".join(item.citations[n][0] for n in ns if n in item.citations))
                 for text, ns in item.sentences]
        cited = [p for p in pairs if p[1]]
        if self.supports_answer is not None:
            ok = sum(self.supports_answer(cited)) if cited else 0
        else:
            ok = sum(self.supports(text, quotes) for text, quotes in cited)
        return ok / len(item.sentences)


def _cited(item: ItemResult) -> list[tuple[str, list[str]]]:
    return [(t, [item.citations[n][1] for n in ns if n in item.citations]) for t, ns in item.sentences]


@dataclass
class CitationRecall(Metric):
    supports: Supports
    name: ClassVar[str] = "citation_recall"

    def score(self, item: ItemResult) -> float | None:
        if item.refused or not item.sentences:
            return None
        return alce_citation_scores(_cited(item), self.supports)[0]


@dataclass
class CitationPrecision(Metric):
    supports: Supports
    name: ClassVar[str] = "citation_precision"

    def score(self, item: ItemResult) -> float | None:
        if item.refused or not item.sentences:
            return None
        return alce_citation_scores(_cited(item), self.supports)[1]


class QuoteExact(Metric):
    name = "citation_quote_exact"

    def score(self, item: ItemResult) -> float | None:
        return float(all(item.quotes_exact)) if item.quotes_exact else None


class RefusalPrecision(Metric):
    """Of the refusals, the share that were right (the item should be refused)."""

    name = "refusal_precision"

    def score(self, item: ItemResult) -> float | None:
        return float(item.refuse) if item.refused else None


class RefusalRecall(Metric):
    """Of the items that should be refused, the share that were."""

    name = "refusal_recall"

    def score(self, item: ItemResult) -> float | None:
        return float(item.refused) if item.refuse else None


@dataclass
class LatencyPercentile(Metric):
    q: float = 50.0
    name: ClassVar[str] = "latency"
    quality: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return f"latency_p{int(self.q)}_ms"

    def score(self, item: ItemResult) -> float | None:
        return item.latency_ms

    def aggregate(self, items: Sequence[ItemResult], scores: Sequence[float | None]) -> float | None:
        return percentile([s for s in scores if s is not None], self.q) if scores else None


def metric_name(m: Metric) -> str:
    return m.label if isinstance(m, LatencyPercentile) else m.name


def default_metrics(
    supports: Supports,
    k: int = 5,
    repeated: frozenset[str] = frozenset(),
    supports_answer: SupportsAnswer | None = None,
) -> list[Metric]:
    """repeated: the eval corpus's boilerplate lines (repeated_lines) for the boilerplate rate; supports_answer:
    faithfulness judges each answer's sentences together, as the app verifies them (ALCE citation recall and
    precision judge one sentence against subsets of its citations, so they use ``supports``)."""
    return [
        RetrievalRecall(k), RetrievalMRR(), RetrievalNDCG(k), KeyFactRecall(), FacetRecall(),
        BoilerplateRate(repeated), TokenF1(),
        Faithfulness(supports, supports_answer), CitationRecall(supports), CitationPrecision(supports), QuoteExact(),
        RefusalPrecision(), RefusalRecall(), LatencyPercentile(50), LatencyPercentile(95),
    ]


def summarise(metrics: Sequence[Metric], items: Sequence[ItemResult]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Aggregate values by metric name, and per-item values (None where not applicable)."""
    per_item: list[dict[str, Any]] = [{} for _ in items]
    out: dict[str, float] = {}
    for m in metrics:
        scores = [m.score(it) for it in items]
        name = metric_name(m)
        for d, s in zip(per_item, scores, strict=True):
            if s is not None and m.quality:
                d[name] = round(s, 4)
        value = m.aggregate(items, scores)
        if value is not None:
            out[name] = round(value, 4)
    return out, per_item
