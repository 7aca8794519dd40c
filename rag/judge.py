"""An offline faithfulness judge: is a claim supported by the evidence? (features + logistic regression)."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import split_sentences
from rag.embeddings import LocalMiniLMEmbeddings
from rag.errors import ConfigError
from rag.text import STOPWORDS, terms, words

JUDGE_FILE = Path(__file__).with_name("judge.json")

FEATURES = (
    "coverage",  # share of the claim's content terms found anywhere in the evidence
    "coverage_best",  # ... found in the two best-matching evidence sentences
    "bigram_copy",  # share of the claim's word bigrams found in the evidence
    "trigram_copy",  # share of the claim's word trigrams found in the evidence
    "cosine_best",  # MiniLM cosine between the claim and its best-matching evidence sentence
    "cosine_mean2",  # mean cosine of the two best sentences
    "lcs_best",  # longest run of claim words copied in order from the best sentence, over claim length
    "numbers",  # share of the claim's numbers found in the best sentences
    "entities",  # share of the claim's capitalised words found in the evidence
    "numbers_all",  # share of the claim's numbers found anywhere in the evidence
    "negation",  # 1 when a negation was added to, or dropped from, the best sentence's wording
    "modality",  # 1 when they disagree on hedging (may, could, would ...)
    "trigram_best",  # share of the claim's word trigrams found in its two best sentences
    "clause_min",  # the worst clause's bigram copy rate (a fused, unsupported clause drags it down)
    "novel_words",  # share of the claim's words (any word) absent from the evidence
    "missing",  # log(1 + content terms of the claim absent from the evidence)
    "length",  # log(1 + content terms of the claim)
)


def _wordlist(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _wordset(text: str) -> frozenset[str]:
    return frozenset(_wordlist(text))


_NEGATIONS = _wordset(
    "not no never none nobody nothing neither nor without cannot can't don't doesn't didn't isn't aren't "
    "wasn't weren't won't wouldn't shouldn't couldn't hasn't haven't hadn't denied deny denies refused "
    "rejected failed"
)
_MODALS = _wordset("may might could would should possibly perhaps likely unlikely allegedly reportedly")
_NUMBER_ORDER = _wordlist(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion first second third fourth fifth sixth seventh eighth ninth tenth half dozen"
)
_NUMBER_WORDS = frozenset(_NUMBER_ORDER)
_WORD_VALUE = {w: str(i) for i, w in enumerate(_NUMBER_ORDER[:21])}
_MONTHS = _wordset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday spring summer autumn fall winter"
)
_CAPITAL = re.compile(r"\b[A-Z][\w'’-]*")
_CLAUSE = re.compile(r"[,;:()\u2014]| - | and | but | while | which | who | after | before | because ")
_SPLIT_NUMBER = re.compile(r"(\d) ?([.,]) ?(\d)")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")


def _ngrams(ws: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)}


def _share(part: set[Any], whole: set[Any]) -> float:
    return 1.0 if not part else len(part & whole) / len(part)


def numbers_of(text: str) -> set[str]:
    """Digits (separators dropped) and number words; dates' years and days count."""
    text = _SPLIT_NUMBER.sub(r"\1\2\3", text)  # tokenised "3 , 800" is 3,800
    out = {d.replace(",", "") for d in _DIGITS.findall(text)}
    out |= {_WORD_VALUE.get(w, w) for w in words(text) if w in _NUMBER_WORDS}
    return out


def entities_of(text: str) -> set[str]:
    """Capitalised words not at a sentence start, plus month/weekday/season names (lower-cased)."""
    out: set[str] = set()
    for m in _CAPITAL.finditer(text):
        before = text[: m.start()].rstrip()
        if before and before[-1] not in ".!?\"“'‘:":
            out |= {w for w in words(m.group()) if w not in STOPWORDS}
    out |= {w for w in words(text) if w in _MONTHS and w != "may"}
    return out


def negation_flip(claim: Sequence[str], source: Sequence[str]) -> bool:
    """A negation in the claim that the source lacks, or one of the source's dropped before a kept word."""
    have = set(claim)
    if any(w in _NEGATIONS and w not in source for w in claim):
        return True
    if any(w in _NEGATIONS for w in claim):
        return False
    return any(w in _NEGATIONS and i + 1 < len(source) and source[i + 1] in have for i, w in enumerate(source))


def _lcs_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous run of words."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


@dataclass(frozen=True)
class JudgeParams:
    """The shipped calibration: standardisation, logistic weights and the decision threshold."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    vetoes: bool = True
    features: tuple[str, ...] = FEATURES
    fitted_on: str = ""

    @classmethod
    def load(cls, path: Path = JUDGE_FILE) -> JudgeParams:
        try:
            d = json.loads(path.read_text())
            params = cls(
                mean=tuple(d["mean"]),
                scale=tuple(d["scale"]),
                coef=tuple(d["coef"]),
                intercept=float(d["intercept"]),
                threshold=float(d["threshold"]),
                vetoes=bool(d.get("vetoes", True)),
                features=tuple(d.get("features", FEATURES)),
                fitted_on=str(d.get("fitted_on", "")),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"The judge's calibration {path} is missing or unreadable - reinstall the package."
            ) from exc
        sizes = {len(params.coef), len(params.mean), len(params.scale)}
        if params.features != FEATURES or sizes != {len(FEATURES)}:
            raise ConfigError(
                f"The judge's calibration {path} does not match its features - "
                "refit it: python -m evals.judge_fit --write."
            )
        return params

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "vetoes": self.vetoes,
            "fitted_on": self.fitted_on,
        }


class _Evidence:
    """An evidence text split into sentences, with their words, terms and (lazily) vectors."""

    def __init__(self, text: str) -> None:
        spans = split_sentences(text) or [(0, len(text))]
        self.sentences = [text[s:e] for s, e in spans]
        self.words = [words(s) for s in self.sentences]
        self.terms = [set(terms(s)) for s in self.sentences]
        all_words = [w for ws in self.words for w in ws]
        self.all_terms: set[str] = set().union(*self.terms) if self.terms else set()
        self.bigrams = _ngrams(all_words, 2)
        self.trigrams = _ngrams(all_words, 3)
        self.word_set = set(all_words)
        self.vectors: np.ndarray | None = None


class SupportJudge:
    """Scores how well evidence supports a claim: a probability in [0, 1] and a calibrated threshold.

    Features come from what runs offline (MiniLM embeddings, lexical coverage, numbers, names,
    negation and modality); the weights were fitted on QAGS CNN/DM by ``evals/judge_fit.py`` and
    live in ``rag/judge.json``. With ``vetoes``, a claim whose number, name or negation is absent
    from its best-matching evidence sentences is judged unsupported whatever the model says.
    """

    def __init__(self, embedder: LocalMiniLMEmbeddings | None = None, params: JudgeParams | None = None) -> None:
        self._embedder = embedder
        self.params = params or JudgeParams.load()
        self.threshold: float = self.params.threshold  # the calibrated decision threshold
        self._lock = threading.Lock()

    @property
    def embedder(self) -> LocalMiniLMEmbeddings:
        with self._lock:
            if self._embedder is None:
                self._embedder = LocalMiniLMEmbeddings()
            return self._embedder

    # -- features --------------------------------------------------------------------
    def _evidence(self, text: str) -> _Evidence:
        return _cached_evidence(text)

    def features(self, claim: str, evidence: str, claim_vector: np.ndarray | None = None) -> dict[str, float]:
        """The named features of one (claim, evidence) pair."""
        ev = self._evidence(evidence)
        if ev.vectors is None:
            ev.vectors = self.embedder.encode(ev.sentences)
        qv = claim_vector if claim_vector is not None else self.embedder.encode([claim])[0]
        return self._features(claim, ev, qv)

    def _features(self, claim: str, ev: _Evidence, qv: np.ndarray) -> dict[str, float]:
        cw = words(claim)
        ct = set(terms(claim))
        assert ev.vectors is not None
        cos = ev.vectors @ qv
        cov = np.array([_share(ct, t) for t in ev.terms])
        order = np.argsort(-(0.5 * cos + 0.5 * cov))
        top = [int(i) for i in order[:2]]
        best = top[0]
        best_terms = set().union(*(ev.terms[i] for i in top))
        best_text = " ".join(ev.sentences[i] for i in top)
        claim_modal = any(w in _MODALS for w in cw)
        best_modal = any(w in _MODALS for w in ev.words[best])
        clauses = [words(c) for c in _CLAUSE.split(claim)]
        clauses = [c for c in clauses if len(c) >= 3] or [cw]
        best_wl = words(best_text)
        nums = numbers_of(claim)
        ents = entities_of(claim)
        return {
            "coverage": _share(ct, ev.all_terms),
            "coverage_best": _share(ct, best_terms),
            "bigram_copy": _share(_ngrams(cw, 2), ev.bigrams),
            "trigram_copy": _share(_ngrams(cw, 3), ev.trigrams),
            "cosine_best": float(cos[best]),
            "cosine_mean2": float(np.mean(cos[top])),
            "lcs_best": _lcs_run(cw, ev.words[best]) / max(len(cw), 1),
            "numbers": _share(nums, numbers_of(best_text)),
            "entities": _share(ents, ev.word_set | {w.removesuffix("'s") for w in ev.word_set}),
            "numbers_all": _share(nums, numbers_of(" ".join(ev.sentences))),
            "negation": float(negation_flip(cw, ev.words[best])),
            "modality": float(claim_modal != best_modal),
            "trigram_best": _share(_ngrams(cw, 3), _ngrams(best_wl, 3)),
            "clause_min": min(_share(_ngrams(c, 2), ev.bigrams) for c in clauses),
            "novel_words": 1.0 - _share(set(cw), ev.word_set),
            "missing": math.log1p(len(ct - ev.all_terms)),
            "length": math.log1p(len(ct)),
        }

    def feature_matrix(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Features of many pairs; claims are embedded in one batch, each evidence once."""
        claim_vecs = self.embedder.encode([c for c, _ in pairs]) if pairs else np.zeros((0, 384))
        rows = []
        for (claim, evidence), qv in zip(pairs, claim_vecs, strict=True):
            ev = self._evidence(evidence)
            if ev.vectors is None:
                ev.vectors = self.embedder.encode(ev.sentences)
            f = self._features(claim, ev, qv)
            rows.append([f[name] for name in FEATURES])
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))

    # -- scoring ---------------------------------------------------------------------
    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """The logistic model's probability of 'supported' for feature rows, vetoes applied."""
        p = self.params
        z = ((x - np.array(p.mean)) / np.array(p.scale)) @ np.array(p.coef) + p.intercept
        prob = 1.0 / (1.0 + np.exp(-z))
        if p.vetoes:
            prob = np.minimum(prob, veto_cap(x))
        return np.asarray(prob, dtype=np.float64)

    def score(self, claim: str, evidence: str) -> float:
        """Probability in [0, 1] that the evidence supports the claim."""
        if not claim.strip() or not evidence.strip():
            return 0.0
        return float(self.probabilities(self.feature_matrix([(claim, evidence)]))[0])

    def score_many(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        keep = [i for i, (c, e) in enumerate(pairs) if c.strip() and e.strip()]
        out = [0.0] * len(pairs)
        if keep:
            probs = self.probabilities(self.feature_matrix([pairs[i] for i in keep]))
            for i, p in zip(keep, probs, strict=True):
                out[i] = float(p)
        return out

    def supported(self, claim: str, evidence: str) -> bool:
        return self.score(claim, evidence) >= self.threshold


NEAR_COPY = 0.5  # lcs_best from which a claim counts as a copy of its best sentence
VETO_CAP = 0.05  # a vetoed claim's probability: below any sensible threshold


def veto_cap(x: np.ndarray) -> np.ndarray:
    """Per row: VETO_CAP when a number or name is absent from the evidence, or a near-copy flips negation."""
    idx = {name: i for i, name in enumerate(FEATURES)}
    negated_copy = (x[:, idx["negation"]] > 0.5) & (x[:, idx["lcs_best"]] >= NEAR_COPY)
    bad = (x[:, idx["numbers_all"]] < 1.0) | (x[:, idx["entities"]] < 1.0) | negated_copy
    return np.where(bad, VETO_CAP, 1.0)


@lru_cache(maxsize=256)
def _cached_evidence(text: str) -> _Evidence:
    return _Evidence(text)
