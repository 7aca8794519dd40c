"""The plain LangChain tutorial pipeline that `make bench-scale` measures beside the app, and the recall rule
both are scored by (RecursiveCharacterTextSplitter 1000/200 + Chroma.similarity_search, same model)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from evals.benchutil import dir_size_mb, latencies_ms
from evals.metrics import percentile
from evals.realtimeqa import RtqaQuestion, contains_answer, is_short, iter_articles
from evals.retrieval import split_of
from rag import LocalMiniLMEmbeddings

K = 5


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def recall(retrieve: Any, questions: list[RtqaQuestion]) -> dict[str, float]:
    """recall@K (all, H1 dev, H1 test, one-word answers) and mean characters returned per question."""
    hits: dict[str, list[bool]] = {"all": [], "dev": [], "test": [], "short": []}
    chars = 0
    for q in questions:
        texts = retrieve(q.question)
        hit = any(contains_answer(t, q.answer) for t in texts)
        chars += sum(len(t) for t in texts)
        for key in ("all", split_of(q), "short" if is_short(q.answer) else ""):
            if key in hits:
                hits[key].append(hit)
    out = {k: sum(v) / max(len(v), 1) for k, v in hits.items()}
    return {**out, "chars": chars / max(len(questions), 1)}



def langchain_baseline(
    datasets: Path, directory: Path, n_articles: int, embedder: LocalMiniLMEmbeddings,
    latency_qs: list[str], counted: list[RtqaQuestion],
) -> dict[str, Any]:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    marker = directory / "ingest.json"
    store = Chroma(collection_name="plain", embedding_function=embedder, persist_directory=str(directory))
    built = json.loads(marker.read_text()) if marker.exists() else {"articles": 0, "chunks": 0, "ingest_s": 0.0}
    if built["articles"] < n_articles:
        # Grown like ours: only the articles this tier adds are split and embedded.
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
        t0 = time.perf_counter()
        n_chunks = 0
        batch: list[Document] = []
        for i, rec in enumerate(iter_articles(datasets, n_articles), 1):
            if i <= built["articles"]:
                continue
            meta = {"article_id": str(rec["id"]), "title": rec.get("title") or ""}
            batch.extend(splitter.split_documents([Document(page_content=rec["text"], metadata=meta)]))
            if len(batch) >= 512 or i == n_articles:
                store.add_documents(batch)
                n_chunks += len(batch)
                batch = []
                log(f"langchain baseline: {i}/{n_articles} articles, {n_chunks} chunks, "
                    f"{n_chunks / (time.perf_counter() - t0):.1f} chunks/s")
        if batch:
            store.add_documents(batch)
            n_chunks += len(batch)
        took = time.perf_counter() - t0
        built = {"articles": n_articles, "chunks": built["chunks"] + n_chunks, "ingest_s": built["ingest_s"] + took,
                 "tier_chunks": n_chunks, "tier_ingest_s": took}
        marker.write_text(json.dumps(built))
    built["chunks_per_s"] = built["chunks"] / built["ingest_s"] if built["ingest_s"] else 0.0
    lat = latencies_ms(lambda q: store.similarity_search(q, k=K), latency_qs)
    r = recall(lambda q: [d.page_content for d in store.similarity_search(q, k=K)], counted)
    return {**built, "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95), "recall": r["all"],
            "recall_dev": r["dev"], "recall_test": r["test"], "recall_short": r["short"],
            "chars": r["chars"], "disk_mb": dir_size_mb(directory)}
