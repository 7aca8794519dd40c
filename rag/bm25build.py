"""The BM25 main segment built from flat arrays: one term-id / count pair per distinct term of each chunk.

bm25s builds its index from a Python list of token ids per chunk. At news scale (87,659 chunks, 11 million
tokens) that list and the per-chunk dictionaries bm25s makes from it cost a few hundred MiB and most of the
build's time. Here each chunk adds its distinct terms and their counts to compact arrays as it is read, and
the score matrix is computed in numpy with the formula bm25s uses (method "lucene", k1 1.5, b 0.75), then
handed to a `bm25s.BM25` that saves, loads and retrieves as usual.

The arrays are saved beside the segment (`SavedCounts`), so that the next full build - when a delta grows too
large and is merged - takes the rows of unchanged chunks from them and reads only the changed chunks' text
back from the store.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.bm25delta import K1, B

log = logging.getLogger(__name__)

COUNTS_FILE = "counts.npz"
# what a saved row depends on besides the chunk's text (which its id pins: rag.chunking): the tokeniser's code
TERMS_VERSION = hashlib.sha256((Path(__file__).with_name("text.py")).read_bytes()).hexdigest()[:16]


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

    def add_counted(self, term_ids: np.ndarray, counts: np.ndarray, length: int) -> None:
        """A chunk already counted (a saved row; its term ids are this builder's: `SavedCounts.builder`)."""
        self._terms.extend(term_ids.tolist())
        self._counts.extend(counts.tolist())
        self._distinct.append(len(term_ids))
        self._lengths.append(length)

    def compact(self) -> None:
        """Drop terms that no chunk has (left by reused vocabularies) and renumber the rest in order."""
        df = self.doc_freqs()
        if df.all():
            return
        keep = df > 0
        new_id = (np.cumsum(keep) - 1).astype(np.int32)
        terms = np.frombuffer(self._terms, dtype=np.int32)
        self._terms = array("i", new_id[terms].tobytes())
        self.vocab = {t: int(new_id[i]) for t, i in self.vocab.items() if keep[i]}

    def save(self, path: Path, ids: list[str], revision: str, collection: str, header: str) -> None:
        """The rows (compacted) for the next full build: the revision they describe, and what they are valid for
        (the chunk collection, the BM25 header, the tokeniser's code)."""
        self.compact()
        vocab = "\n".join(self.vocab)  # terms hold no whitespace (rag.text)
        with path.open("wb") as fh:
            np.savez(
                fh, terms=_ints(self._terms), counts=_ints(self._counts), distinct=_ints(self._distinct),
                lengths=_ints(self._lengths), vocab=np.frombuffer(vocab.encode("utf-8"), dtype=np.uint8),
                ids=np.array(ids), key=np.array([revision, collection, header, TERMS_VERSION]),
            )

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

        self.compact()
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


def _ints(a: array[int]) -> np.ndarray:
    return np.frombuffer(a, dtype=np.int32)


@dataclass
class SavedCounts:
    """The rows a full build saved: each chunk's distinct term ids and counts, and its length."""

    revision: str  # the store revision the rows describe
    ids: list[str]
    vocab: list[str]
    terms: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray  # row i is terms[offsets[i]:offsets[i + 1]]
    lengths: np.ndarray

    @classmethod
    def load(cls, path: Path, collection: str, header: str) -> SavedCounts | None:
        """The saved rows if they were made from this chunk collection with this header and tokeniser, else None.

        Within one collection a chunk id names one text (ids carry the article's content hash: rag.chunking;
        re-chunking with other settings makes a new collection), so a row is valid for as long as its id is
        stored; `revision` says which store state the rows describe as a whole."""
        try:
            with np.load(path, allow_pickle=False) as z:
                revision, *key = (str(k) for k in z["key"])
                if key != [collection, header, TERMS_VERSION]:
                    return None
                vocab = bytes(z["vocab"]).decode("utf-8")
                distinct = z["distinct"]
                out = cls(revision, [str(i) for i in z["ids"]], vocab.split("\n") if vocab else [], z["terms"],
                          z["counts"], np.concatenate([[0], np.cumsum(distinct)]), z["lengths"])
        except FileNotFoundError:
            return None
        except Exception as exc:  # a truncated or damaged file (zip, EOF, value errors): every text is read again
            log.warning("BM25 saved term counts %s are unreadable (%s); reading every chunk instead", path, exc)
            return None
        if not (len(out.ids) == len(out.lengths) == len(out.offsets) - 1 and out.offsets[-1] == len(out.terms)):
            log.warning("BM25 saved term counts %s do not match their ids; reading every chunk instead", path)
            return None
        return out

    def builder(self) -> SegmentBuilder:
        """An empty builder whose vocabulary is this one's, so saved rows are added as they are."""
        b = SegmentBuilder()
        b.vocab = {t: i for i, t in enumerate(self.vocab)}
        return b

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.terms[a:b], self.counts[a:b], int(self.lengths[i])
