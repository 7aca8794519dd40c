"""An offline faithfulness judge: is a claim supported by the evidence? (two logistic experts and a style gate)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.embeddings import LocalMiniLMEmbeddings
from rag.errors import ConfigError
from rag.judge_features import JUDGE_LAYERS, Encoder, Evidence, features, segments

JUDGE_FILE = Path(__file__).with_name("judge.json")

Verdict = Literal["supported", "uncertain", "not supported"]

# What each model reads (rag/judge_features.py computes them; evals/judge_fit.py measured each one).
EXTRACTIVE = (  # the expert for claims that copy their evidence (fitted on QAGS CNN/DM)
    "coverage", "bigram_copy", "trigram_copy", "cosine_best", "cosine_mean2", "lcs_best", "numbers_win",
    "entities", "numbers_all", "negation", "modality", "trigram_win", "clause_min", "novel_words", "missing",
    "length", "align_win1", "align_content", "novel_content",
)
PARAPHRASE = (  # the expert for claims that paraphrase (fitted on QAGS XSum dev)
    "novel_content", "align_content", "coverage", "numbers_all", "unaligned", "clause_min", "length",
)
GATE = (  # P(the writer copies the evidence, CNN/DM style), from the mean of these over the answer's sentences
    "trigram_copy", "bigram_copy", "lcs_best", "novel_words", "clause_min", "coverage", "length", "cosine_best",
)
VETOES = ("numbers_all", "entities", "negated_copy")  # read by veto_cap
FEATURES = tuple(dict.fromkeys(EXTRACTIVE + PARAPHRASE + GATE + VETOES))  # the columns of a feature matrix
# Style belongs to the writer as well as to the sentence: in an answer whose sentences copy their passages, one
# that does not copy is more often unsupported than paraphrased. The gate reads each sentence halfway to its
# answer's mean. QAGS grouped CV, BA/AUC, with cosine_best in the gate: each sentence alone (0.0) CNN/DM
# 0.734/0.834, XSum 0.724/0.801; halfway (0.5) 0.752/0.845 and 0.741/0.805; all the way (1.0) 0.752/0.843 and
# 0.750/0.808 (those with layer 6 and a gate fitted on style labels), but then a paraphrase among quotes is
# judged as a quote (evals/judge_fit.py prints the shipped one).
ANSWER_STYLE = 0.5
VETO_CAP = 0.05  # a vetoed claim's probability: below any threshold or band
CACHE_EVIDENCE = 256  # evidence texts whose sentence split and lexical sets are kept (LRU)


@dataclass(frozen=True)
class Logistic:
    """One standardised logistic regression over named feature columns."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def prob(self, x: np.ndarray) -> np.ndarray:
        cols = [FEATURES.index(f) for f in self.features]
        z = ((x[:, cols] - np.array(self.mean)) / np.array(self.scale)) @ np.array(self.coef) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Logistic:
        out = cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]), float(d["intercept"]))
        if not set(out.features) <= set(FEATURES) or len({len(out.features), len(out.mean), len(out.coef)}) != 1:
            raise ValueError("features and weights disagree")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept}


@dataclass(frozen=True)
class JudgeParams:
    """The shipped calibration: two experts, the gate mixing them, the threshold and the uncertain band."""

    extractive: Logistic
    paraphrase: Logistic
    gate: Logistic
    threshold: float = 0.5
    band: tuple[float, float] = (0.5, 0.5)  # [low, high): "uncertain"; below "not supported"; above "supported"
    vetoes: bool = True
    fitted_on: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path = JUDGE_FILE) -> JudgeParams:
        try:
            d = json.loads(path.read_text())
            m = d["models"]
            params = cls(
                extractive=Logistic.from_dict(m["extractive"]),
                paraphrase=Logistic.from_dict(m["paraphrase"]),
                gate=Logistic.from_dict(m["gate"]),
                threshold=float(d["threshold"]),
                band=(float(d["uncertain_band"][0]), float(d["uncertain_band"][1])),
                vetoes=bool(d.get("vetoes", True)),
                fitted_on=str(d.get("fitted_on", "")),
                extra={k: v for k, v in d.items() if k not in _KEYS},
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(
                f"The judge's calibration {path} is missing, unreadable or does not match its features - "
                "refit it: python -m evals.judge_fit --write."
            ) from exc
        if not params.band[0] <= params.threshold <= params.band[1]:
            raise ConfigError(f"The judge's calibration {path}: the uncertain band must contain the threshold.")
        return params

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "models": {"extractive": self.extractive.to_dict(), "paraphrase": self.paraphrase.to_dict(),
                       "gate": self.gate.to_dict()},
            "threshold": self.threshold,
            "uncertain_band": list(self.band),
            "vetoes": self.vetoes,
            "fitted_on": self.fitted_on,
        }


_KEYS = {"models", "threshold", "uncertain_band", "vetoes", "fitted_on"}


def veto_cap(x: np.ndarray) -> np.ndarray:
    """Per row: VETO_CAP when a number or a (capitalised) name of the claim is absent from the evidence,
    or when a clause of the claim copies an evidence sentence but flips its negation; else 1."""
    col = {name: i for i, name in enumerate(FEATURES)}
    bad = (x[:, col["numbers_all"]] < 1.0) | (x[:, col["entities"]] < 1.0) | (x[:, col["negated_copy"]] > 0.5)
    return np.where(bad, VETO_CAP, 1.0)


def answer_style(x: np.ndarray) -> np.ndarray:
    """What the gate reads for the sentences of one answer: each row moved ANSWER_STYLE of the way to the
    answer's mean row. One sentence is its own answer."""
    if not len(x):
        return x
    return np.asarray((1.0 - ANSWER_STYLE) * x + ANSWER_STYLE * x.mean(axis=0), dtype=np.float64)


def mix(params: JudgeParams, x: np.ndarray, style: np.ndarray | None = None) -> np.ndarray:
    """The gated mixture of the two experts, vetoes applied: P(supported) per feature row. The gate reads
    ``style`` (rows like x, e.g. ``answer_style`` of an answer's rows), else each row itself."""
    a = params.gate.prob(x if style is None else style)
    prob = a * params.extractive.prob(x) + (1.0 - a) * params.paraphrase.prob(x)
    if params.vetoes:
        prob = np.minimum(prob, veto_cap(x))
    return np.asarray(prob, dtype=np.float64)


class SupportJudge:
    """Scores how well evidence supports a claim: a probability, a threshold and a three-way verdict.

    Features come from what runs offline: MiniLM word alignment (layer 3 of 6; BERTScore-precision style, over the
    whole evidence and over windows of 1-3 consecutive sentences), lexical copy and coverage rates,
    novel content words, numbers, names, negation and modality. An "extractive" expert fitted on
    QAGS CNN/DM and a "paraphrase" expert fitted on QAGS XSum are mixed by a gate that estimates
    from the copy rates which expert explains the claim (fitted by EM); weights in ``rag/judge.json``
    (evals/judge_fit.py).
    """

    def __init__(self, embedder: LocalMiniLMEmbeddings | None = None, params: JudgeParams | None = None) -> None:
        """``embedder``: a model cut at the judge's layer (``LocalMiniLMEmbeddings(layers=JUDGE_LAYERS)``) to
        share; by default the judge loads its own on first use."""
        if embedder is not None and embedder.layers != JUDGE_LAYERS:
            raise ConfigError(
                f"The judge reads MiniLM's layer {JUDGE_LAYERS}: pass LocalMiniLMEmbeddings(layers={JUDGE_LAYERS}) "
                "or no embedder."
            )
        self._embedder = embedder
        self._encoder: Encoder | None = None
        self.params = params or JudgeParams.load()
        self.threshold: float = self.params.threshold  # the calibrated decision threshold
        self.band: tuple[float, float] = self.params.band
        self._lock = threading.Lock()
        self._evidence_cache: OrderedDict[str, Evidence] = OrderedDict()
        self._claim_cache: OrderedDict[str, tuple[np.ndarray, Any]] = OrderedDict()

    @property
    def embedder(self) -> LocalMiniLMEmbeddings:
        with self._lock:
            if self._embedder is None:
                self._embedder = LocalMiniLMEmbeddings(layers=JUDGE_LAYERS)
            return self._embedder

    @property
    def encoder(self) -> Encoder:
        emb = self.embedder
        with self._lock:
            if self._encoder is None:
                self._encoder = Encoder(emb)
            return self._encoder

    # -- features --------------------------------------------------------------------
    def evidence(self, text: str) -> Evidence:
        with self._lock:
            ev = self._evidence_cache.get(text)
        if ev is None:
            ev = self.encoder.evidence(text)
        with self._lock:
            self._evidence_cache[text] = ev
            self._evidence_cache.move_to_end(text)
            while len(self._evidence_cache) > CACHE_EVIDENCE:
                self._evidence_cache.popitem(last=False)
        return ev

    def _claims(self, claims: Sequence[str]) -> list[tuple[np.ndarray, Any]]:
        with self._lock:
            missing = list(dict.fromkeys(c for c in claims if c not in self._claim_cache))
        if missing:
            vecs, wvs = self.encoder.claims(missing)
            with self._lock:
                for c, v, w in zip(missing, vecs, wvs, strict=True):
                    self._claim_cache[c] = (v, w)
        with self._lock:
            out = [self._claim_cache[c] for c in claims]
            while len(self._claim_cache) > CACHE_EVIDENCE:
                self._claim_cache.popitem(last=False)
        return out

    def prepare(self, claims: Sequence[str], evidences: Sequence[str]) -> None:
        """Encode the claims in one batch and every evidence text's segments in another (one model run each
        for an answer's sentences and passages), so that later scoring costs no model run."""
        self._claims(list(claims))
        self.encoder.encode_segments([s for e in evidences for s, _ in segments(e)])

    def features(self, claim: str, evidence: str) -> dict[str, float]:
        """Every named feature of one (claim, evidence) pair (the fitted ones and the other candidates)."""
        ((qv, cw),) = self._claims([claim])
        return features(claim, qv, cw, self.evidence(evidence))

    def feature_matrix(self, pairs: Sequence[tuple[str, str]], names: Sequence[str] = FEATURES) -> np.ndarray:
        """Features of many pairs (columns ``names``); claims are embedded in one batch, each evidence once."""
        encoded = self._claims([c for c, _ in pairs]) if pairs else []
        rows = []
        for (claim, evidence), (qv, cw) in zip(pairs, encoded, strict=True):
            f = features(claim, qv, cw, self.evidence(evidence))
            rows.append([f[n] for n in names])
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))

    # -- scoring ---------------------------------------------------------------------
    def probabilities(self, x: np.ndarray, style: np.ndarray | None = None) -> np.ndarray:
        """P(supported) for rows of ``feature_matrix`` (columns FEATURES), vetoes applied; ``style`` as in mix."""
        return mix(self.params, x, style)

    def score(self, claim: str, evidence: str) -> float:
        """Probability in [0, 1] that the evidence supports the claim."""
        return self.score_many([(claim, evidence)])[0]

    def score_many(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(supported) for each (claim, evidence), each judged on its own."""
        return self._scores(pairs, together=False)

    def score_answer(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(supported) for each (sentence, cited evidence) of one answer, the gate reading the answer's style
        (the mean over its pairs, ``answer_style``)."""
        return self._scores(pairs, together=True)

    def _scores(self, pairs: Sequence[tuple[str, str]], together: bool) -> list[float]:
        """An empty claim or evidence scores 0 and is left out of the features (and of the answer's style)."""
        keep = [i for i, (c, e) in enumerate(pairs) if c.strip() and e.strip()]
        out = [0.0] * len(pairs)
        if keep:
            x = self.feature_matrix([pairs[i] for i in keep])
            for i, p in zip(keep, self.probabilities(x, answer_style(x) if together else None), strict=True):
                out[i] = float(p)
        return out

    def supported_answer(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """The binary decision for each sentence of one answer (``score_answer`` at the threshold)."""
        return [p >= self.threshold for p in self.score_answer(pairs)]

    def supported(self, claim: str, evidence: str) -> bool:
        """The binary decision at the threshold (what `rag eval` and the agreement figures use)."""
        return self.score(claim, evidence) >= self.threshold

    def verdict(self, score: float) -> Verdict:
        """Three-way: "supported" above the uncertain band, "not supported" below it, else "uncertain"."""
        low, high = self.band
        if score >= high:
            return "supported"
        return "not supported" if score < low else "uncertain"

    def evidence_sentences(self, evidence: str) -> list[str]:
        """The evidence's sentences as the judge splits them (the order of ``sentence_scores``)."""
        return list(self.evidence(evidence).sentences)

    def sentence_scores(self, claims: Sequence[str], evidence: str) -> list[float]:
        """Per evidence sentence, the best alignment of any of the claims' words with it (for quoting)."""
        ev = self.evidence(evidence)
        best = np.zeros(len(ev.sentences))
        if not len(ev.word_vectors):
            return [0.0] * len(ev.sentences)
        bounds = np.flatnonzero(np.r_[True, ev.word_sentence[1:] != ev.word_sentence[:-1]])
        for _, cw in self._claims(list(claims)):
            if len(cw.vectors):
                per = np.maximum.reduceat(cw.vectors @ ev.word_vectors.T, bounds, axis=1)
                best = np.maximum(best, per.mean(axis=0))
        return [float(b) for b in best]
