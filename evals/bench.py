"""`make bench`: ingest throughput vs the raw model, no-op re-ingest, warm and cold `ask`, peak RSS.

Measured on the seed corpus and on the first 500 RealTime QA articles (skipped with a message when the
datasets are absent). Figures are printed and written to docs/benchmarks.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from evals.benchutil import REPO, cpu_note, dir_size_mb, latencies_ms, md_table, peak_rss_mb, write_section
from evals.golden import load_golden
from evals.metrics import percentile
from evals.realtimeqa import ARTICLES, write_subset
from rag import Chunker, LocalMiniLMEmbeddings, RagService, Settings, Turn


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def chunk_texts(svc: RagService, paths: list[Path]) -> list[str]:
    """The chunks the app makes of the articles under paths (re-chunked, not read back)."""
    chunker = Chunker(svc.settings.chunk_size, svc.settings.chunk_overlap)
    out: list[str] = []
    for a in svc.list_articles():
        art = svc.get_article(a["article_id"])
        if art is not None:
            out.extend(c.text for c in chunker.split(art))
    return out


def raw_throughput(embedder: LocalMiniLMEmbeddings, texts: list[str]) -> tuple[float, float]:
    """Chunks per wall second and per CPU second (all threads) of the bare model on texts."""
    embedder.encode(texts[:32])
    t, c = time.perf_counter(), time.process_time()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - t), len(texts) / (time.process_time() - c)


# A small launcher measures the child: the rusage of a child forked from this (large) process would
# count this process's memory as the child's peak RSS.
LAUNCH = (
    "import json, os, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, ru = os.wait4(p.pid, 0)\n"
    "wall = time.perf_counter() - t\n"
    "open(sys.argv[1], 'w').write(json.dumps([wall, ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime, status]))\n"
)


def golden_latency(svc: RagService) -> list[float]:
    """Warm latency of every `ask` of the golden set (follow-ups asked in their conversation), ms."""
    out: list[float] = []
    items = load_golden()
    for _round in range(2):  # the first round warms caches; the second is measured
        out.clear()
        for item in items:
            history: list[Turn] = []
            for q in item.turns:
                t = time.perf_counter()
                a = svc.ask(q, history=history, mode="extractive")
                out.append((time.perf_counter() - t) * 1000)
                history.append(Turn(q, a.answer, a.standalone_question))
    return out


def cold_ask(data_dir: Path, question: str, runs: int = 3) -> tuple[list[float], list[float], list[float]]:
    """Wall seconds, peak RSS (MiB) and CPU seconds of fresh `rag ask --json` processes."""
    rag = Path(sys.executable).with_name("rag")
    cmd = [str(rag)] if rag.exists() else [sys.executable, "-m", "rag.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") or k == "RAG_DATASETS_DIR"}
    walls, rss, cpu = [], [], []
    stats = data_dir / "cold-ask.json"
    for _ in range(runs):
        ask = [*cmd, "--data-dir", str(data_dir), "ask", question, "--json", "--mode", "extractive"]
        proc = subprocess.run([sys.executable, "-c", LAUNCH, str(stats), *ask], capture_output=True, env=env)
        wall, peak, cpu_s, status = json.loads(stats.read_text())
        if status != 0 or not proc.stdout.strip():
            raise SystemExit(f"cold `rag ask` failed ({status}): {proc.stderr.decode().strip()[-300:]}")
        json.loads(proc.stdout)
        walls.append(wall)
        rss.append(peak)
        cpu.append(cpu_s)
    return walls, rss, cpu


def measure(name: str, data_dir: Path, paths: list[Path], question: str) -> dict[str, Any]:
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
    svc = RagService(settings)
    svc.embedder  # noqa: B018 - the model is loaded before timing, as for the raw measure
    log(f"[{name}] ingest {', '.join(map(str, paths))}")
    t, c = time.perf_counter(), time.process_time()
    report = svc.ingest(paths)
    ingest_s, ingest_cpu = time.perf_counter() - t, time.process_time() - c
    chunks = report.chunks_added
    log(f"[{name}] {report.added} articles, {chunks} chunks in {ingest_s:.1f} s; raw model on the same chunks")
    texts = chunk_texts(svc, paths)
    raw, raw_cpu = raw_throughput(svc.embedder, texts)
    fresh = RagService(settings)
    t = time.perf_counter()
    noop = fresh.ingest(paths)
    noop_s = time.perf_counter() - t
    log(f"[{name}] no-op re-ingest {noop_s:.2f} s (changed={noop.changed}); warm ask over the golden set")
    lat = golden_latency(svc)
    questions = [q for item in load_golden() for q in item.turns]
    retrieval = latencies_ms(lambda q: svc.retrieve(q, settings.top_k), questions)
    log(f"[{name}] cold `rag ask`")
    svc.close()  # an embedded index has one owner: the `rag ask` processes below open it themselves
    fresh.close()
    walls, child_rss, child_cpu = cold_ask(data_dir, question)
    return {
        "corpus": name, "articles": report.added, "chunks": chunks, "ingest_s": ingest_s,
        "chunks_per_s": chunks / ingest_s, "raw_chunks_per_s": raw, "ratio": chunks / ingest_s / raw,
        "cpu_ratio": chunks / ingest_cpu / raw_cpu, "embed_share": report.embed_seconds / ingest_s,
        "noop_s": noop_s, "noop_share": noop_s / ingest_s, "noop_loaded_model": fresh.embedder_loaded,
        "ask_p50_ms": percentile(lat, 50), "ask_p95_ms": percentile(lat, 95), "n_asks": len(lat),
        "retrieve_p50_ms": percentile(retrieval, 50), "retrieve_p95_ms": percentile(retrieval, 95),
        "cold_ask_s": statistics.median(walls), "cold_ask_runs": walls, "cold_ask_rss_mb": max(child_rss),
        "cold_ask_cpu_s": statistics.median(child_cpu),
        "index_mb": dir_size_mb(data_dir), "peak_rss_mb": peak_rss_mb(),
    }


def render(rows: list[dict[str, Any]]) -> str:
    return "\n".join([
        "## Foundation benchmark (`make bench`)",
        "",
        f"{cpu_note()} at the end of the run. Ingest is timed end to end (read, chunk, embed, write, BM25) "
        "with the model already loaded; the raw figure is the same model encoding the same chunks in the same "
        "run. Warm `ask` is every question of `evals/datasets/golden.jsonl` (follow-ups in their conversation), "
        "extractive mode, after one warm-up round. Cold `rag ask` is the median wall time of 3 fresh "
        "`rag ask --json` processes, process start included; its CPU seconds (all threads) are less sensitive "
        "to other processes on the machine than wall time, and so is the ratio of CPU-time throughputs.",
        "",
        md_table(
            ["corpus", "articles", "chunks", "ingest s", "chunks/s", "raw model chunks/s", "ratio", "ratio (CPU time)",
             "embedding share of ingest", "no-op re-ingest s", "no-op loads model", "index MiB"],
            [[r["corpus"], r["articles"], r["chunks"], r["ingest_s"], r["chunks_per_s"], r["raw_chunks_per_s"],
              r["ratio"], r["cpu_ratio"], r["embed_share"], r["noop_s"], "yes" if r["noop_loaded_model"] else "no",
              r["index_mb"]] for r in rows],
        ),
        "",
        md_table(
            ["corpus", "warm ask p50 ms", "warm ask p95 ms", "retrieval p50 ms", "retrieval p95 ms",
             "cold `rag ask` s", "cold ask CPU s", "cold ask peak RSS MiB", "bench peak RSS MiB"],
            [[r["corpus"], r["ask_p50_ms"], r["ask_p95_ms"], r["retrieve_p50_ms"], r["retrieve_p95_ms"],
              r["cold_ask_s"], r["cold_ask_cpu_s"], r["cold_ask_rss_mb"], r["peak_rss_mb"]] for r in rows],
        ),
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(".rag/bench"), help="scratch indexes (deleted first)")
    p.add_argument("--articles", type=int, default=500, help="RealTime QA articles (0: seed corpus only)")
    args = p.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("chromadb", "httpx", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    rows = [measure("seed corpus", args.data_dir / "seed", [REPO / "corpus"], "What does Russia want?")]
    log(json.dumps(rows[-1], indent=1))
    datasets = Settings(_env_file=None).datasets_dir  # type: ignore[call-arg]
    if args.articles and (datasets / ARTICLES).exists():
        subset = write_subset(datasets, args.data_dir / f"rtqa-{args.articles}.jsonl", args.articles)
        rows.append(measure(f"RealTime QA, first {args.articles}", args.data_dir / "rtqa", [subset],
                            "What did the Federal Reserve decide about interest rates?"))
        subset.unlink()
        log(json.dumps(rows[-1], indent=1))
    elif args.articles:
        log(f"skipped the RealTime QA part: {datasets / ARTICLES} is absent (set RAG_DATASETS_DIR).")
    text = render(rows)
    write_section("bench", text)
    print(text)
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MiB; written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
