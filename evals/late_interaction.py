"""`python -m evals.late_interaction --index DIR`: would a query-time word-level rerank with the shipped model help?

Issue 13's misses are mostly ordering: the answer is in the hybrid top 30 but not the top 5 (`python -m
evals.ablate --headroom`), which is a cross-encoder's job, and none ships offline. The nearest thing the packaged
MiniLM can do is late interaction at query time, as ColBERT scores and BERTScore aligns: encode the question and
each of the top 30 passages, give every question content word its best cosine among the passage's contextual
word vectors, and average. This reranks the shipped top 30 that way (alone, and min-max blended with the fused
score) and prints hybrid recall@5 on the H1 dev and test splits and the rerank's cost per question. Nothing of it
ships: it is the measurement behind not shipping it (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench_scale import counted_questions
from evals.metrics import percentile
from evals.realtimeqa import QUESTIONS, contains_answer, load_questions
from evals.retrieval import split_of
from rag import LocalMiniLMEmbeddings, RagService, Settings
from rag.text import terms

DEPTH, K = 30, 5
BLENDS = (0.2, 0.4, 0.6)  # weight of the word-level score in the min-max blend with the fused score


def _minmax(v: np.ndarray) -> np.ndarray:
    span = float(v.max() - v.min())
    return (v - v.min()) / span if span else np.zeros_like(v)


def word_scores(model: LocalMiniLMEmbeddings, question: str, texts: list[str]) -> np.ndarray:
    """Per text: the mean over the question's content words of their best cosine to one of the text's words."""
    _, (q,) = model.encode_words([question])
    keep = [i for i, w in enumerate(q.words) if terms(w)]
    qv = q.vectors[keep] if keep else q.vectors
    _, per_text = model.encode_words(texts)
    return np.array([float((qv @ w.vectors.T).max(axis=1).mean()) if len(w.vectors) else 0.0 for w in per_text])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--index", type=Path, required=True, help="data dir of an index of RealTime QA articles")
    p.add_argument("--collection", default="articles")
    p.add_argument("--layers", type=int, default=3, help="MiniLM layers read (the judge reads 3; the index 6)")
    p.add_argument("--limit", type=int, default=0, help="ask only the first N eligible questions (a smoke run)")
    args = p.parse_args(argv)
    settings = Settings().model_copy(update={"data_dir": args.index, "collection": args.collection})
    svc = RagService(settings)
    n_articles = len(svc.list_articles())
    questions = counted_questions(settings.datasets_dir, load_questions(settings.datasets_dir / QUESTIONS), n_articles)
    if args.limit:
        questions = questions[: args.limit]
    model = LocalMiniLMEmbeddings(layers=args.layers)
    names = ["shipped", "word level alone", *[f"blend {b}" for b in BLENDS]]
    hits: dict[str, dict[str, int]] = {s: dict.fromkeys(names, 0) for s in ("dev", "test")}
    counts = {"dev": 0, "test": 0}
    cost_ms: list[float] = []
    for q in questions:
        split = split_of(q)
        if split not in counts:
            continue
        pool = svc.retrieve(q.question, k=DEPTH)
        labels = np.array([contains_answer(x.text, q.answer) for x in pool])
        fused = np.array([x.score for x in pool])
        t0 = time.perf_counter()
        words = word_scores(model, q.question, [x.text for x in pool])
        cost_ms.append((time.perf_counter() - t0) * 1000)
        orders = {"shipped": np.arange(len(pool)), "word level alone": np.argsort(-words, kind="stable")}
        for b in BLENDS:
            orders[f"blend {b}"] = np.argsort(-((1 - b) * _minmax(fused) + b * _minmax(words)), kind="stable")
        counts[split] += 1
        for name, order in orders.items():
            hits[split][name] += bool(labels[order[:K]].any())
    report: dict[str, Any] = {
        "index": str(args.index), "articles": n_articles, "layers": args.layers, "depth": DEPTH, "k": K,
        "questions": counts,
        "recall_at_5": {s: {n: round(h / counts[s], 3) if counts[s] else None for n, h in hits[s].items()}
                        for s in hits},
        "rerank_ms_p50": round(percentile(cost_ms, 50), 1) if cost_ms else None,
        "rerank_ms_p95": round(percentile(cost_ms, 95), 1) if cost_ms else None,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
