"""The offline judge's features: lexical checks and MiniLM word alignment of a claim against evidence."""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from rag.chunking import split_sentences
from rag.embeddings import DIMENSION, LocalMiniLMEmbeddings, WordVectors
from rag.text import STOPWORDS, terms, words

SEGMENT_CHARS = 900  # evidence is encoded in runs of whole sentences up to this size: ~200 word pieces, under
#                      the model's 256 (MAX_TOKENS); a chunk (800 characters by default) is one run
PASSAGE_BREAK = "\n\f\n"  # runs never cross it (a form feed: absent from article text): join passages with
#                            it and each passage is encoded once per answer, as one run of the model
# The judge reads MiniLM's third of six layers: on QAGS grouped CV (evals/judge_fit.py, negation read on the
# aligned sentence) layer 3 was best on both styles, CNN/DM BA/AUC 0.757/0.851 and XSum 0.741/0.804, against
# 0.751/0.848 and 0.741/0.797 (layer 2), 0.749/0.844 and 0.720/0.791 (4), 0.748/0.842 and 0.725/0.786 (5),
# 0.748/0.841 and 0.741/0.805 (6, the last, shipped before); as BERTScore found, a middle layer aligns words
# best, and it halves the judge's model cost (evals/judge_cost.py).
JUDGE_LAYERS = 3
NEAR_COPY = 0.5  # the share of a claim's (or clause's) words in one run from which it counts as a copy
WINDOW = 3  # sentence windows of 1..WINDOW consecutive evidence sentences (XSum claims fuse 2-3 sentences)
LOW_MATCH = 0.55  # a content word whose best MiniLM match is below this is "unaligned" (measured on QAGS:
#                   same-word pairs in other contexts sit at 0.6-0.9, unrelated content words at 0.2-0.5)
CACHE_SEGMENTS = 2048  # encoded evidence segments kept (about 1.5 MB each at most; LRU)


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


NEGATIONS = _wordset(
    "not no never none nobody nothing neither nor without cannot can't don't doesn't didn't isn't aren't "
    "wasn't weren't won't wouldn't shouldn't couldn't hasn't haven't hadn't denied deny denies refused "
    "rejected failed"
)
MODALS = _wordset("may might could would should possibly perhaps likely unlikely allegedly reportedly")
_NUMBER_ORDER = tuple(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion first second third fourth fifth sixth seventh eighth ninth tenth half dozen".split()
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


def ngrams(ws: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)}


def share(part: set[Any], whole: set[Any]) -> float:
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


def _negation(w: str) -> str | None:
    """The negation a word carries, contractions read as "not" ("didn't" and "did not" agree), else None."""
    if w.endswith("n't") or w == "cannot":
        return "not"
    return w if w in NEGATIONS else None


def _negated_words(ws: Sequence[str]) -> set[str]:
    """The content words a negation governs: the first content word after each negation (function words between)."""
    out = set()
    for i, w in enumerate(ws):
        if _negation(w):
            v = next((u for u in ws[i + 1 :] if _is_content(u) and not _negation(u)), None)
            if v is not None:
                out.add(v)
    return out


def negation_flip(claim: Sequence[str], source: Sequence[str]) -> bool:
    """A word the claim negates that the source states without that negation ("has not consistently rejected"
    against "has consistently rejected"), or the reverse ("is seeking" against "is not seeking"). Contractions
    read as "not"; a negation elsewhere in the source sentence does not cancel one in the claim."""
    ours, theirs = _negated_words(claim), _negated_words(source)
    return bool((ours - theirs) & set(source)) or bool((theirs - ours) & set(claim))


def lcs_run(a: Sequence[str], b: Sequence[str]) -> int:
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


def negated_copy(clauses: Sequence[Sequence[str]], sentences: Sequence[Sequence[str]]) -> bool:
    """Some clause of the claim copies an evidence sentence (NEAR_COPY of its words in one run, negations left
    out of both) but flips that sentence's negation. Read clause by clause, because a claim often fuses two
    sentences, and only one of them holds the claim's negation."""
    for clause in clauses:
        bare = [w for w in clause if w not in NEGATIONS]
        if len(bare) < 3:
            continue
        best, source = 0, None
        for sent in sentences:
            run = lcs_run(bare, [w for w in sent if w not in NEGATIONS])
            if run > best:
                best, source = run, sent
        if source is not None and best >= NEAR_COPY * len(bare) and negation_flip(clause, source):
            return True
    return False


def _is_content(w: str) -> bool:
    return any(ch.isalnum() for ch in w) and w not in STOPWORDS


@lru_cache(maxsize=4096)
def _lexical(sentence: str) -> tuple[list[str], set[str]]:
    """A sentence's words and stemmed terms (cached: an answer's passages recur in many evidence texts)."""
    return words(sentence), set(terms(sentence))


@dataclass
class Evidence:
    """Evidence split into sentences: lexical views, and MiniLM word vectors with each word's sentence."""

    sentences: list[str]
    words: list[list[str]] = field(default_factory=list)
    terms: list[set[str]] = field(default_factory=list)
    word_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, DIMENSION), dtype=np.float32))
    word_sentence: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    token_words: list[str] = field(default_factory=list)
    token_array: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, DIMENSION), dtype=np.float32))

    def __post_init__(self) -> None:
        lex = [_lexical(s) for s in self.sentences]
        self.words = [w for w, _ in lex]
        self.terms = [t for _, t in lex]
        all_words = [w for ws in self.words for w in ws]
        self.all_terms: set[str] = set().union(*self.terms) if self.terms else set()
        self.bigrams = ngrams(all_words, 2)
        self.trigrams = ngrams(all_words, 3)
        self.word_set = set(all_words) | {w.removesuffix("'s") for w in all_words}
        self.numbers = numbers_of(" ".join(self.sentences))


def segments(text: str) -> list[tuple[str, list[tuple[int, int]]]]:
    """Runs of whole sentences (offsets within the run) up to SEGMENT_CHARS, never across a PASSAGE_BREAK."""
    out: list[tuple[str, list[tuple[int, int]]]] = []
    for block in text.split(PASSAGE_BREAK):
        spans = split_sentences(block)
        run: list[tuple[int, int]] = []
        for s, e in spans:
            if run and e - run[0][0] > SEGMENT_CHARS:
                out.append((block[run[0][0] : run[-1][1]], [(a - run[0][0], b - run[0][0]) for a, b in run]))
                run = []
            run.append((s, e))
        if run:
            out.append((block[run[0][0] : run[-1][1]], [(a - run[0][0], b - run[0][0]) for a, b in run]))
    return out


class Encoder:
    """Encodes evidence segments once (LRU cache) and claims in batches with the shared MiniLM model."""

    def __init__(self, embedder: LocalMiniLMEmbeddings) -> None:
        self.embedder = embedder
        self._cache: OrderedDict[str, WordVectors] = OrderedDict()
        self._lock = threading.Lock()

    def encode_segments(self, texts: list[str]) -> list[WordVectors]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            _, encoded = self.embedder.encode_words(missing)
            with self._lock:
                for t, wv in zip(missing, encoded, strict=True):
                    self._cache[t] = wv
        with self._lock:
            out = []
            for t in texts:
                self._cache.move_to_end(t)
                out.append(self._cache[t])
            while len(self._cache) > CACHE_SEGMENTS:
                self._cache.popitem(last=False)
            return out

    def evidence(self, text: str) -> Evidence:
        segs = segments(text)
        encoded = self.encode_segments([s for s, _ in segs])
        sentences: list[str] = []
        vec_rows: list[np.ndarray] = []
        word_sentence: list[int] = []
        token_words: list[str] = []
        for (seg, spans), wv in zip(segs, encoded, strict=True):
            starts = np.array(wv.starts, dtype=np.int64)
            for s, e in spans:
                sel = np.flatnonzero((starts >= s) & (starts < e))
                if not len(sel) or not seg[s:e].strip():
                    continue
                vec_rows.append(wv.vectors[sel])
                word_sentence += [len(sentences)] * len(sel)
                token_words += [wv.words[i] for i in sel]
                sentences.append(seg[s:e])
        if not sentences:
            return Evidence([text])
        ev = Evidence(sentences)
        ev.word_vectors = np.concatenate(vec_rows)
        ev.word_sentence = np.array(word_sentence, dtype=np.int64)
        ev.token_words = token_words
        ev.token_array = np.array(token_words)
        pooled = np.stack([r.mean(axis=0) for r in vec_rows])
        ev.vectors = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return ev

    def claims(self, texts: Sequence[str]) -> tuple[np.ndarray, list[WordVectors]]:
        return self.embedder.encode_words(texts)


def _window_max(m: np.ndarray, k: int) -> np.ndarray:
    """Column-wise max over each run of k consecutive columns: (rows, cols - k + 1), or (rows, 1) if short."""
    if m.shape[1] <= k:
        return m.max(axis=1, keepdims=True)
    out = m[:, : m.shape[1] - k + 1].copy()
    for j in range(1, k):
        np.maximum(out, m[:, j : m.shape[1] - k + 1 + j], out=out)
    return out


def features(claim: str, qv: np.ndarray, cw: WordVectors, ev: Evidence) -> dict[str, float]:
    """Every candidate feature of one (claim, evidence) pair; the judge keeps the fitted subset."""
    lw = words(claim)
    ct = set(terms(claim))
    n_sent = len(ev.sentences)
    # -- MiniLM word alignment (BERTScore precision style) --------------------------------------
    keep = [i for i, w in enumerate(cw.words) if any(ch.isalnum() for ch in w)]
    content = [j for j, i in enumerate(keep) if _is_content(cw.words[i])]
    if keep and len(ev.word_vectors):
        sim = cw.vectors[keep] @ ev.word_vectors.T  # (claim words, evidence words)
        exact = np.array([cw.words[i] for i in keep])[:, None] == ev.token_array[None, :]
        sim = np.where(exact, 1.0, sim)
        bounds = np.flatnonzero(np.r_[True, ev.word_sentence[1:] != ev.word_sentence[:-1]])
        per_sent = np.maximum.reduceat(sim, bounds, axis=1)  # (claim words, sentences)
    else:
        per_sent = np.zeros((max(len(keep), 1), max(n_sent, 1)))
    best = per_sent.max(axis=1)
    cbest = best[content] if content else best
    wins = {k: _window_max(per_sent, k) for k in (1, 2, WINDOW)}
    win_prec = {k: (w[content] if content else w).mean(axis=0) for k, w in wins.items()}
    top = int(np.argmax(win_prec[WINDOW]))
    top_sents = list(range(top, min(top + WINDOW, n_sent)))
    best1 = int(np.argmax(win_prec[1]))
    # -- sentence-window cosine -------------------------------------------------------------
    cos = ev.vectors @ qv if len(ev.vectors) else np.zeros(1)
    win_cos = [0.0]
    if len(ev.vectors):
        csum = np.vstack([np.zeros((1, ev.vectors.shape[1])), np.cumsum(ev.vectors, axis=0)])
        for k in range(1, min(WINDOW, n_sent) + 1):
            v = csum[k:] - csum[:-k]  # every window of k consecutive sentences, summed
            win_cos.append(float(np.max(v @ qv / np.maximum(np.linalg.norm(v, axis=1), 1e-12))))
    # -- lexical ---------------------------------------------------------------------------
    win_words = [w for s in top_sents for w in ev.words[s]]
    win_terms: set[str] = set().union(*(ev.terms[s] for s in top_sents)) if top_sents else set()
    nums = numbers_of(claim)
    ents = entities_of(claim)
    clauses = [words(c) for c in _CLAUSE.split(claim)]
    clauses = [c for c in clauses if len(c) >= 3] or [lw]
    claim_modal = any(w in MODALS for w in lw)
    novel = [w for w in lw if _is_content(w) and w not in ev.word_set]
    order = np.argsort(-cos)
    return {
        "align_p": float(best.mean()),
        "align_content": float(cbest.mean()),
        "align_content_min": float(cbest.min()),
        "unaligned": math.log1p(float((cbest < LOW_MATCH).sum())),
        "align_win1": float(win_prec[1].max()),
        "align_win2": float(win_prec[2].max()),
        "align_win3": float(win_prec[WINDOW].max()),
        "cosine_best": float(cos.max()),
        "cosine_win": max(win_cos),
        "cosine_mean2": float(np.mean(cos[order[:2]])),
        "coverage": share(ct, ev.all_terms),
        "coverage_win": share(ct, win_terms),
        "bigram_copy": share(ngrams(lw, 2), ev.bigrams),
        "trigram_copy": share(ngrams(lw, 3), ev.trigrams),
        "trigram_win": share(ngrams(lw, 3), ngrams(win_words, 3)),
        "lcs_best": lcs_run(lw, ev.words[best1]) / max(len(lw), 1),
        "numbers_win": share(nums, numbers_of(" ".join(ev.sentences[s] for s in top_sents))),
        "numbers_all": share(nums, ev.numbers),
        "numbers_missing": float(len(nums - ev.numbers)),
        "entities": share(ents, ev.word_set),
        "negation": float(negation_flip(lw, ev.words[best1])),  # the sentence it aligns with, as lcs_best
        "negated_copy": float(negated_copy([*clauses, lw] if len(clauses) > 1 else clauses, ev.words)),
        "negation_win": float(negation_flip(lw, win_words)),
        "modality": float(claim_modal != any(w in MODALS for w in ev.words[best1])),
        "modality_win": float(claim_modal and not any(w in MODALS for w in win_words)),
        "clause_min": min(share(ngrams(c, 2), ev.bigrams) for c in clauses),
        "novel_words": 1.0 - share(set(lw), ev.word_set),
        "novel_content": math.log1p(len(set(novel))),
        "missing": math.log1p(len(ct - ev.all_terms)),
        "length": math.log1p(len(ct)),
    }
