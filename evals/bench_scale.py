"""`make bench-scale`: grow one index over RealTime QA tier by tier (500 -> 2,000 -> 5,386 articles).

At each tier: ingest time and chunks/s next to the raw embedding throughput on a 2,000-chunk sample of
the same chunks, index size on disk, peak RSS, warm retrieval latency p50/p95 (dense, BM25, hybrid) on
200 questions, answer-string recall@5 (all, H1 dev, H1 test), and the no-op re-ingest time. Each tier's
ingest runs in a process of its own, so its peak RSS is what `rag ingest` needs, apart from the bench's.
At the 2,000 and 5,386 tiers, the plain LangChain tutorial pipeline (RecursiveCharacterTextSplitter
1000/200 + Chroma.similarity_search, same embedding model, same articles) is measured beside it in the
same run. Figures are printed and written to docs/benchmarks.md; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from evals.bench_plain import K, langchain_baseline, recall
from evals.benchutil import (
    cpu_note,
    dir_size_mb,
    latencies_ms,
    md_table,
    own_peak_rss_mb,
    peak_rss_mb,
    write_section,
)
from evals.metrics import percentile
from evals.realtimeqa import (
    ARTICLES,
    QUESTIONS,
    RtqaQuestion,
    iter_articles,
    load_questions,
)
from evals.retrieval import eligible_questions
from rag import Chunker, LocalMiniLMEmbeddings, RagService, Settings

TIERS = (500, 2000, 5386)
BASELINE_TIERS = (2000, 5386)
METHODS = ("dense", "bm25", "hybrid")


def git_commit() -> str:
    """The commit that measured a tier (tiers of one index may be measured by different runs)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except OSError:
        return ""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the questions a tier can answer (the contracts' rule) ---------------------------
def counted_questions(datasets: Path, questions: list[RtqaQuestion], n_articles: int) -> list[RtqaQuestion]:
    """Questions with an indexed search-result article that contains the answer (as `rag eval retrieval`)."""
    wanted = {aid for q in questions for aid in q.search_result_ids}
    texts = {str(r["id"]): r["text"] for r in iter_articles(datasets, n_articles) if str(r["id"]) in wanted}
    return [rq.question for rq in eligible_questions(questions, texts)]


# -- the raw model on a sample of the same chunks ----------------------------------------
def chunk_sample(datasets: Path, settings: Settings, start: int, stop: int, size: int, seed: int = 0) -> list[str]:
    """A uniform (reservoir) sample of the chunks of articles [start, stop), as the app chunks them."""
    from rag import Article

    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, settings.embed_title_header)
    rng = random.Random(seed)
    sample: list[str] = []
    seen = 0
    for n, rec in enumerate(iter_articles(datasets, stop)):
        if n < start:
            continue
        art = Article(article_id=str(rec["id"]), text=rec["text"].strip(), title=rec.get("title") or "",
                      title_derived=not rec.get("title"))
        for text in chunker.model_inputs([(art, chunker.split(art))])[0]:  # what the model reads
            seen += 1
            if len(sample) < size:
                sample.append(text)
            elif (j := rng.randrange(seen)) < size:
                sample[j] = text
    return sample


def raw_throughput(embedder: LocalMiniLMEmbeddings, texts: list[str]) -> float:
    embedder.encode(texts[:32])  # warm
    t = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - t)


# -- one tier of our pipeline --------------------------------------------------------------
def service(settings: Settings, embedder: LocalMiniLMEmbeddings) -> RagService:
    """A service sharing the bench's one loaded model (one model in memory, as in the app)."""
    return RagService(settings, embedder=embedder)


def ingest_tier(settings: Settings, path: Path, tier: int, embedder: LocalMiniLMEmbeddings) -> dict[str, Any]:
    svc = service(settings, embedder)
    marks: list[float] = []
    t0 = time.perf_counter()

    def progress(done: int, chunks: int) -> None:
        marks.append(time.perf_counter())
        if len(marks) % 20 == 0:
            el = marks[-1] - t0
            log(f"   {done}/{tier} articles read, {chunks} chunks in {el:.0f} s ({chunks / el:.1f} chunks/s)")

    report = svc.ingest([path], progress=progress, limit=tier)
    total = time.perf_counter() - t0
    bm25_s = time.perf_counter() - marks[-1] if marks and report.changed else 0.0
    return {
        "articles_added": report.added,
        "chunks_added": report.chunks_added,
        "ingest_s": total,
        "embed_s": report.embed_seconds,
        "bm25_rebuild_s": bm25_s,
        "chunks_per_s": report.chunks_added / total if total else 0.0,
    }


def _quiet() -> None:
    """Each process of the bench (the children are spawned fresh): no telemetry, no library chatter."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("chromadb", "httpx", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _ingest_child(data_dir: str, path: str, tier: int) -> dict[str, Any]:
    """One tier's ingest in a process of its own (as `rag ingest` runs), with that process's peak RSS."""
    _quiet()
    settings = Settings(data_dir=Path(data_dir))  # type: ignore[call-arg]
    out = ingest_tier(settings, Path(path), tier, LocalMiniLMEmbeddings())
    return {**out, "ingest_peak_rss_mb": own_peak_rss_mb()}


def _measure_child(data_dir: str, path: str, tier: int, prev_tier: int, sample_size: int,
                   n_latency: int) -> dict[str, Any]:
    """A tier's figures after its ingest, in a fresh process (the app's view: one model, one index)."""
    _quiet()
    settings = Settings(data_dir=Path(data_dir))  # type: ignore[call-arg]
    datasets = settings.datasets_dir
    questions = load_questions(datasets / QUESTIONS)
    latency_qs = [q.question for q in questions[:n_latency]]
    embedder = LocalMiniLMEmbeddings()
    log(f"== tier {tier}: raw model throughput on a {sample_size}-chunk sample")
    raw = raw_throughput(embedder, chunk_sample(datasets, settings, prev_tier, tier, sample_size))
    noop = noop_reingest(settings, Path(path), tier)
    log(f"   raw {raw:.1f} chunks/s; no-op {noop}")
    svc = service(settings, embedder)
    counted = counted_questions(datasets, questions, tier)
    log(f"== tier {tier}: queries ({len(latency_qs)} for latency, {len(counted)} for recall)")
    q = measure_queries(svc, latency_qs, counted)
    out = {"raw_chunks_per_s": raw, **noop, "chunks_total": svc.stats()["chunks"], "n_counted": len(counted), **q,
           "peak_rss_mb": own_peak_rss_mb()}  # the model, the raw sample, the no-op and query services
    svc.close()
    return out


def isolated(fn: Any, *args: Any) -> dict[str, Any]:
    """fn(*args) in a spawned child process. Each process that opens the index does so once: Chroma's
    in-process state is not refreshed when another process writes, so the bench never opens it itself."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(fn, args)
    return result


def noop_reingest(settings: Settings, path: Path, tier: int) -> dict[str, Any]:
    svc = RagService(settings)
    t0 = time.perf_counter()
    report = svc.ingest([path], limit=tier)
    took = time.perf_counter() - t0
    loaded = svc.embedder_loaded
    svc.close()
    return {"noop_s": took, "noop_changed": report.changed, "noop_model_loaded": loaded}


def measure_queries(svc: RagService, latency_qs: list[str], counted: list[RtqaQuestion]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in METHODS:
        lat = latencies_ms(lambda q, m=m: svc.retrieve(q, K, method=m), latency_qs)  # type: ignore[misc]
        out[f"{m}_p50_ms"], out[f"{m}_p95_ms"] = percentile(lat, 50), percentile(lat, 95)
        r = recall(lambda q, m=m: [p.text for p in svc.retrieve(q, K, method=m)], counted)  # type: ignore[misc]
        out[f"{m}_recall"], out[f"{m}_recall_short"], out[f"{m}_chars"] = r["all"], r["short"], r["chars"]
        out[f"{m}_recall_dev"], out[f"{m}_recall_test"] = r["dev"], r["test"]
    lat = latencies_ms(lambda q: svc.ask(q, k=K, mode="extractive"), latency_qs[:50])
    out["ask_p50_ms"], out["ask_p95_ms"] = percentile(lat, 50), percentile(lat, 95)
    return out


# -- report --------------------------------------------------------------------------------
def render(results: list[dict[str, Any]], baselines: dict[int, dict[str, Any]], settings: Settings) -> str:
    lines = [
        "## Scale benchmark (`make bench-scale`)",
        "",
        f"One index grown tier by tier over `{ARTICLES}`; chunk size {settings.chunk_size}/{settings.chunk_overlap}; "
        f"store: {'Chroma server' if settings.chroma_host else 'embedded Chroma'}; {cpu_note()} at the end of the run. "
        "Latency is warm, per question, over the first 200 questions of "
        f"`{QUESTIONS}`, and includes embedding the query. Recall@{K} uses the contracts' match rule "
        "(`evals/realtimeqa.py contains_answer`) on the questions whose answer occurs in an indexed "
        "search-result article.",
        "",
        md_table(
            ["articles", "chunks added", "ingest s", "chunks/s", "raw model chunks/s", "ratio", "BM25 rebuild s",
             "no-op re-ingest s", "no-op / full", "index MiB", "ingest peak RSS MiB", "query peak RSS MiB",
             "load (1 min)", "commit"],
            [[r["tier"], r["chunks_added"], r["ingest_s"], r["chunks_per_s"], r["raw_chunks_per_s"], r["ratio"],
              r["bm25_rebuild_s"], r["noop_s"], r["noop_share"], r["index_mb"], r.get("ingest_peak_rss_mb", ""),
              r["peak_rss_mb"] if "ingest_peak_rss_mb" in r else f"{r['peak_rss_mb']:.0f} (with ingest)",
              r.get("load1", ""), r.get("commit", "")] for r in results],
        ),
        "",
        md_table(
            ["articles", "questions", *[f"{m} p50/p95 ms" for m in METHODS], "ask p50/p95 ms",
             *[f"{m} recall@{K}" for m in METHODS]],
            [[r["tier"], r["n_counted"], *[f"{r[f'{m}_p50_ms']:.1f} / {r[f'{m}_p95_ms']:.1f}" for m in METHODS],
              f"{r['ask_p50_ms']:.1f} / {r['ask_p95_ms']:.1f}", *[f"{r[f'{m}_recall']:.3f}" for m in METHODS]]
             for r in results],
        ),
    ]
    for baseline in (baselines[t] for t in sorted(baselines)):
        ours = next((r for r in results if r["tier"] == baseline["tier"]), None)
        if ours is None:
            continue
        lines += [
            "",
            f"### Against the plain LangChain pipeline at {baseline['tier']:,} articles",
            "",
            "Plain: `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)` + "
            "`langchain_chroma.Chroma.add_documents` / `similarity_search(k=5)`, same `LocalMiniLMEmbeddings`.",
            "",
            md_table(
                ["pipeline", "chunks", "ingest s", "chunks/s", "p50 ms", "p95 ms", f"recall@{K}",
                 f"H1 dev recall@{K}", f"H1 test recall@{K}", f"recall@{K} one-word", "chars returned / question",
                 "index MiB"],
                [
                    [f"this app ({m})", ours["chunks_total"], ours["ingest_total_s"],
                     ours["chunks_total"] / ours["ingest_total_s"], ours[f"{m}_p50_ms"], ours[f"{m}_p95_ms"],
                     ours[f"{m}_recall"], ours.get(f"{m}_recall_dev", ""), ours.get(f"{m}_recall_test", ""),
                     ours[f"{m}_recall_short"], ours[f"{m}_chars"], ours["index_mb"]]
                    for m in METHODS
                ] + [
                    ["plain LangChain", baseline["chunks"], baseline["ingest_s"], baseline["chunks_per_s"],
                     baseline["p50_ms"], baseline["p95_ms"], baseline["recall"], baseline.get("recall_dev", ""),
                     baseline.get("recall_test", ""), baseline["recall_short"], baseline["chars"],
                     baseline["disk_mb"]],
                ],
            ),
            "",
            f"Recall@{K} difference (hybrid - plain): {100 * (ours['hybrid_recall'] - baseline['recall']):+.1f} points "
            f"on {ours['n_counted']} questions"
            + (f" (H1 test: {100 * (ours['hybrid_recall_test'] - baseline['recall_test']):+.1f})."
               if "recall_test" in baseline and "hybrid_recall_test" in ours else "."),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stop-at", type=int, default=TIERS[-1], help="last tier to measure (500, 2000 or 5386)")
    p.add_argument("--tiers", type=int, nargs="+", default=list(TIERS), help=argparse.SUPPRESS)  # small smoke runs
    p.add_argument("--data-dir", type=Path, default=Path(".rag/bench-scale"), help="the growing index (reused)")
    p.add_argument("--fresh", action="store_true", help="delete the index first")
    p.add_argument("--sample", type=int, default=2000, help="chunks in the raw-model sample")
    p.add_argument("--questions", type=int, default=200, help="questions for latency")
    p.add_argument("--baseline-at", type=int, nargs="*", default=list(BASELINE_TIERS),
                   help="tiers at which to measure the plain LangChain pipeline (none: skip it)")
    args = p.parse_args(argv)
    _quiet()

    settings = Settings(data_dir=args.data_dir)  # type: ignore[call-arg]  # the rest from RAG_* / .env
    datasets = settings.datasets_dir
    path = datasets / ARTICLES
    if not path.exists() or not (datasets / QUESTIONS).exists():
        log(f"skipped: {path} (or {QUESTIONS}) is absent - set RAG_DATASETS_DIR to the shared datasets folder.")
        return 0
    if args.fresh:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.data_dir / "tiers.json"
    baseline_path = args.data_dir / "langchain-plain.json"
    # Tiers measured by earlier runs are kept (and shown) unless this run measures them again.
    previous: dict[int, dict[str, Any]] = {}
    baselines: dict[int, dict[str, Any]] = {}
    if not args.fresh:
        if results_path.exists():
            previous = {r["tier"]: r for r in json.loads(results_path.read_text())}
        if baseline_path.exists():
            stored = json.loads(baseline_path.read_text())
            # one measurement per tier (older runs stored only the last one)
            baselines = {stored["tier"]: stored} if "tier" in stored else {int(t): b for t, b in stored.items()}
    questions = load_questions(datasets / QUESTIONS)
    latency_qs = [q.question for q in questions[: args.questions]]
    measured: dict[int, dict[str, Any]] = dict(previous)
    results = [measured[t] for t in sorted(measured)]
    for tier in [t for t in args.tiers if t <= args.stop_at]:
        prev_tier = max([t for t in measured if t < tier], default=0)
        log(f"== tier {tier} articles: ingest")
        ing = isolated(_ingest_child, str(settings.data_dir), str(path), tier)
        if ing["chunks_added"] == 0 and tier in previous:
            log(f"tier {tier} already ingested: reusing its ingest figures from {results_path}")
            ing = {k: previous[tier].get(k, "") for k in ing}
            if not ing["ingest_peak_rss_mb"]:  # measured before ingest had a process of its own
                ing["ingest_peak_rss_mb"] = f"{previous[tier]['peak_rss_mb']:.0f} (whole bench process)"
        log(f"   {ing}")
        m = isolated(_measure_child, str(settings.data_dir), str(path), tier, prev_tier, args.sample, args.questions)
        ingest_total = sum(r["ingest_s"] for t, r in measured.items() if t < tier) + ing["ingest_s"]
        row = {
            "tier": tier, **ing, **m, "ratio": ing["chunks_per_s"] / m["raw_chunks_per_s"] if m["raw_chunks_per_s"]
            else 0.0, "ingest_total_s": ingest_total,
            "noop_share": m["noop_s"] / ingest_total if ingest_total else 0.0,
            "index_mb": dir_size_mb(args.data_dir / "chroma") + dir_size_mb(args.data_dir / "bm25"),
            "load1": os.getloadavg()[0], "commit": git_commit(),
        }
        measured = {t: r for t, r in measured.items() if t <= tier} | {tier: row}
        results = [measured[t] for t in sorted(measured)]
        log(json.dumps(row, indent=1))
        results_path.write_text(json.dumps(results, indent=1))
        if tier in args.baseline_at:
            log(f"== tier {tier}: plain LangChain pipeline")
            counted = counted_questions(datasets, questions, tier)
            baseline = langchain_baseline(
                datasets, args.data_dir / "langchain-plain", tier, LocalMiniLMEmbeddings(), latency_qs, counted)
            baseline["peak_rss_mb"] = peak_rss_mb()
            baseline["tier"] = tier
            baseline["load1"], baseline["commit"] = os.getloadavg()[0], git_commit()
            baselines[tier] = baseline
            baseline_path.write_text(json.dumps(baselines, indent=1))
            log(json.dumps(baseline, indent=1))
        write_section("bench-scale", render(results, baselines, settings))
    text = render(results, baselines, settings)
    print(text)
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
