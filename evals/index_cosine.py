"""The embedding-cosine baseline of the judge's reports: each claim's best cosine to a sentence of its evidence,
with the index's own (full six-layer) MiniLM model - the judge reads a cut model whose pooled vectors are not
trained sentence embeddings, so its ``cosine_best`` feature would understate this baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.embeddings import LocalMiniLMEmbeddings
from rag.judge_features import segments


def best_sentence_cosine(claims: Sequence[str], evidences: Sequence[str],
                         embedder: LocalMiniLMEmbeddings | None = None) -> np.ndarray:
    """Per (claim, evidence) pair: the highest cosine between the claim and one of the evidence's sentences
    (sentence vectors pooled from the evidence's segments, as ingest pools a chunk's sentences); 0 when the
    evidence has no sentence."""
    emb = embedder or LocalMiniLMEmbeddings()
    claim_vecs = emb.encode(list(claims)) if claims else np.zeros((0, emb.dimension), dtype=np.float32)
    by_text: dict[str, np.ndarray] = {}
    for text in dict.fromkeys(evidences):
        segs = segments(text)
        if not segs:
            by_text[text] = np.zeros((0, emb.dimension), dtype=np.float32)
            continue
        _, per_segment = emb.embed_with_spans([s for s, _ in segs], [spans for _, spans in segs])
        by_text[text] = np.concatenate(per_segment)
    out = np.zeros(len(claims))
    for i, (vec, text) in enumerate(zip(claim_vecs, evidences, strict=True)):
        sent = by_text[text]
        out[i] = float(np.max(sent @ vec)) if len(sent) else 0.0
    return out
