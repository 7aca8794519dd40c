"""The BM25 main segment built from flat arrays: one term-id / count pair per distinct term of each chunk.

bm25s builds its index from a Python list of token ids per chunk. At news scale (87,659 chunks, 11 million
tokens) that list and the per-chunk dictionaries bm25s makes from it cost a few hundred MiB and most of the
build's time. Here each chunk adds its distinct terms and their counts to compact arrays as it is read, and
the score matrix is computed in numpy with the formula bm25s uses (method "lucene", k1 1.5, b 0.75), then
handed to a `bm25s.BM25` that saves, loads and retrieves as usual.
"""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import numpy as np

from rag.bm25delta import K1, B


class SegmentBuilder:
    """Accumulates chunks' terms; `model()` returns the bm25s index over them."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._terms = array("i")  # term id of each (chunk, distinct term) pair, chunk by chunk
        self._counts = array("i")  # how often that term occurs in that chunk
        self._distinct = array("i")  # distinct terms per chunk
        self._lengths = array("i")  # terms per chunk (with repeats): the document length

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, row: list[str]) -> None:
        vocab = self.vocab
        counts = Counter(vocab.setdefault(t, len(vocab)) for t in row)
        self._terms.extend(counts.keys())
        self._counts.extend(counts.values())
        self._distinct.append(len(counts))
        self._lengths.append(len(row))

    @property
    def avgdl(self) -> float:
        return float(np.frombuffer(self._lengths, dtype=np.int32).mean()) if len(self) else 0.0

    def doc_freqs(self) -> np.ndarray:
        """Chunks containing each term, by term id."""
        return np.bincount(np.frombuffer(self._terms, dtype=np.int32), minlength=len(self.vocab))

    def df(self) -> dict[str, int]:
        return dict(zip(self.vocab, self.doc_freqs().tolist(), strict=True))

    def model(self) -> Any:
        """A bm25s.BM25 over the chunks added, as `BM25().index((ids, vocab))` would build it."""
        import bm25s

        n_docs = len(self)
        terms = np.frombuffer(self._terms, dtype=np.int32)
        tf = np.frombuffer(self._counts, dtype=np.int32).astype(np.float32)
        lengths = np.frombuffer(self._lengths, dtype=np.int32).astype(np.float32)
        df = self.doc_freqs()
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        doc = np.repeat(np.arange(n_docs, dtype=np.int32), np.frombuffer(self._distinct, dtype=np.int32))
        norm = K1 * ((1 - B) + B * lengths / np.float32(self.avgdl or 1.0))
        scores = idf[terms] * (tf / (norm[doc] + tf))
        del tf, norm
        order = np.argsort(terms, kind="stable")  # column (term) major; rows (chunks) ascending within a term
        model = bm25s.BM25()
        model.scores = {
            "data": scores[order],
            "indices": doc[order],
            "indptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int32),
            "num_docs": n_docs,
        }
        vocab = dict(self.vocab)
        vocab.setdefault("", len(vocab))  # bm25s's empty token (a query of no known term), outside the matrix
        model.vocab_dict = vocab
        model.unique_token_ids_set = set(vocab.values())
        model.nonoccurrence_array = None  # only BM25L and BM25+ use it
        return model
