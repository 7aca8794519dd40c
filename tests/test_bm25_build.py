"""The BM25 main segment built from flat arrays scores exactly as bm25s's own index of the same chunks."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

from rag.bm25build import SegmentBuilder
from rag.text import terms

CHUNKS = [
    "Negotiators met in Istanbul to discuss the grain corridor and the grain ships.",
    "The grain corridor reopened; shipping insurance premiums fell for cargo vessels.",
    "",  # a chunk with no terms still takes a row
    "Zanzibar cloves sold at record prices, and Zanzibar nutmeg too.",
    "Cargo vessels cross the Black Sea every week, insurers said, grain grain grain.",
]


def _rows() -> list[list[str]]:
    return [terms(c) for c in CHUNKS]


def test_scores_match_bm25s_index_of_the_same_rows(tmp_path: Path) -> None:
    builder = SegmentBuilder()
    for row in _rows():
        builder.add(row)
    ours = builder.model()
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in row] for row in _rows()]
    ref = bm25s.BM25()
    ref.index((ids, vocab), show_progress=False)
    assert ours.vocab_dict == ref.vocab_dict
    assert ours.scores["num_docs"] == ref.scores["num_docs"] == len(CHUNKS)
    np.testing.assert_array_equal(ours.scores["indptr"], ref.scores["indptr"])
    np.testing.assert_array_equal(ours.scores["indices"], ref.scores["indices"])
    np.testing.assert_allclose(ours.scores["data"], ref.scores["data"], rtol=1e-6)
    assert builder.avgdl == np.mean([len(r) for r in _rows()])
    assert builder.df()["grain"] == 3 and builder.df()["zanzibar"] == 1
    # it saves and loads as a bm25s index, and retrieves the same chunks
    ours.save(str(tmp_path / "index"), show_progress=False)
    loaded = bm25s.BM25.load(str(tmp_path / "index"), show_progress=False)
    for query in (["grain", "corridor"], ["zanzibar"], ["cargo", "insur"]):
        a, sa = loaded.retrieve([query], k=3, show_progress=False)
        b, sb = ref.retrieve([query], k=3, show_progress=False)
        assert a.tolist() == b.tolist()
        np.testing.assert_allclose(sa, sb, rtol=1e-6)


def test_freed_heap_can_be_handed_back_on_linux() -> None:
    import sys

    from rag.memory import release_free_memory

    assert release_free_memory() is sys.platform.startswith("linux")
