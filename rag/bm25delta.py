"""The BM25 delta segment: chunks added since the last full build, and main-segment chunks masked as deleted.

A small ingest (a watched folder, an upload, a delete) writes a delta instead of rebuilding the whole BM25
index; the next full build merges it. The delta file names the main segment it extends (`base`) and the
store revision it brings the index to (`revision`): a reader uses it only when both match, so a crash or a
kill between the store write and the delta write makes the next reader rebuild instead of serving a stale
or half-written index. It is written to a temporary file and renamed into place (atomic on POSIX).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DELTA_FILE = "delta.json"
K1, B = 1.5, 0.75  # bm25s defaults (method "lucene"), so delta scores are on the main segment's scale


@dataclass
class Delta:
    base: str  # revision of the main segment this delta extends
    revision: str  # store revision the main segment plus this delta describe
    ids: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)  # terms of each delta chunk
    days: list[int] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # main-segment chunk ids no longer in the store

    def __post_init__(self) -> None:
        self._tf = [Counter(r) for r in self.rows]
        self._df: Counter[str] = Counter(t for tf in self._tf for t in tf)

    @property
    def df(self) -> Counter[str]:
        return self._df

    def save(self, directory: Path) -> None:
        tmp = directory / (DELTA_FILE + ".tmp")
        data = {"base": self.base, "revision": self.revision, "ids": self.ids, "rows": self.rows,
                "days": self.days, "deleted": self.deleted}
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / DELTA_FILE)

    @classmethod
    def load(cls, directory: Path) -> Delta | None:
        try:
            d = json.loads((directory / DELTA_FILE).read_text(encoding="utf-8"))
            return cls(str(d["base"]), str(d["revision"]), list(d["ids"]), [list(r) for r in d["rows"]],
                       [int(x) for x in d["days"]], list(d["deleted"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def scores(self, query: list[str], n_docs: int, df: dict[str, int], avgdl: float) -> np.ndarray:
        """BM25 (lucene) score of each delta chunk for the query terms, with the whole index's N and df."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        avgdl = avgdl or 1.0
        for t in query:  # a repeated query term counts again, as in bm25s
            n_t = df.get(t, 0) + self._df.get(t, 0)
            if not n_t:
                continue
            idf = math.log(1 + (n_docs - n_t + 0.5) / (n_t + 0.5))
            for i, (tf, row) in enumerate(zip(self._tf, self.rows, strict=True)):
                f = tf.get(t, 0)
                if f:
                    out[i] += idf * f / (f + K1 * (1 - B + B * len(row) / avgdl))
        return out
