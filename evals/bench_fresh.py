"""Time to searchable: 10 new articles ingested by `rag ingest` in another process, then asked of this
already-serving process, both on one Chroma server (the only way two processes share an index).

    python -m evals.bench_fresh --index $RAG_DATA_DIR/evals/index-realtimeqa-500 [--write]
    python -m evals.bench_fresh --index .rag/bench-scale --collection articles --skip 5376 [--write]

The index (a `rag eval retrieval` or `make bench-scale` data dir) is copied, never changed. When the copy
already holds the new articles (the 5,386-article index holds them all), they are deleted from it first,
through the same server, so the ingest re-adds them. Figures are printed and, with --write,
written to docs/benchmarks.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from evals.bench_scale import git_commit
from evals.benchutil import cpu_note, write_section
from evals.realtimeqa import ARTICLES
from evals.retrieval import COLLECTION
from rag import RagService, Settings

N_NEW = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroma(path: Path, port: int) -> subprocess.Popen[bytes]:
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chroma run did not start")


def run(index: Path, datasets: Path, skip: int, collection: str = COLLECTION) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp_s:
        tmp = Path(tmp_s)
        shutil.copytree(index / "chroma", tmp / "chroma")
        shutil.copytree(index / "bm25", tmp / "data" / "bm25")
        new = tmp / "new.jsonl"
        recs = []
        with gzip.open(datasets / ARTICLES, "rt", encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if n >= skip + N_NEW:
                    break
                if n >= skip:
                    recs.append(json.loads(line))
        new.write_text("".join(json.dumps(r) + "\n" for r in recs))
        port = _free_port()
        server = _chroma(tmp / "chroma", port)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
            env.update(RAG_CHROMA_HOST="127.0.0.1", RAG_CHROMA_PORT=str(port), RAG_DATA_DIR=str(tmp / "data"),
                       RAG_COLLECTION=collection)
            settings = Settings(chroma_host="127.0.0.1", chroma_port=port, data_dir=tmp / "data",
                                collection=collection, _env_file=None)  # type: ignore[call-arg]
            svc = RagService(settings)
            question = str(recs[0]["title"])
            new_ids = {str(r["id"]) for r in recs}
            held = {str(a["article_id"]) for a in svc.list_articles()} & new_ids
            for aid in sorted(held):  # the index already has them: taken out first, so the ingest adds them
                svc.delete_article(aid)
            svc.ask("warm up the serving process")
            chunks_before = svc.stats()["chunks"]
            ingest = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(new), "-q", "--json"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while ingest.poll() is None:  # the serving process keeps answering while the ingest runs
                svc.ask("What did the officials say about the talks?")
                time.sleep(0.1)
            done = time.perf_counter()
            if ingest.returncode != 0:
                raise RuntimeError(f"rag ingest exited with {ingest.returncode}")
            answered = bm25_found = None
            while time.perf_counter() - done < 60 and (answered is None or bm25_found is None):
                ans = svc.ask(question)
                now = time.perf_counter() - done
                if answered is None and any(p.article_id in new_ids for p in ans.contexts):
                    answered = now
                hits = svc.retrieve(question, 5, method="bm25")
                if bm25_found is None and any(p.article_id in new_ids for p in hits):
                    bm25_found = now
                time.sleep(0.1)
            delta = (tmp / "data" / "bm25" / collection / "delta.json").exists() or (
                tmp / "data" / "bm25" / "delta.json").exists()
            return {"chunks_before": int(chunks_before), "chunks_after": int(svc.stats()["chunks"]),
                    "question": question, "answered_s": -1.0 if answered is None else round(answered, 2),
                    "bm25_s": -1.0 if bm25_found is None else round(bm25_found, 2), "delta_written": str(delta)}
        finally:
            server.terminate()
            server.wait(30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--index", required=True, help="data dir of a `rag eval retrieval` index (copied)")
    p.add_argument("--skip", type=int, default=500, help="the new articles are those after the first N")
    p.add_argument("--collection", default=COLLECTION, help="its collection (make bench-scale: articles)")
    p.add_argument("--write", action="store_true", help="write the figures to docs/benchmarks.md")
    args = p.parse_args(argv)
    res = run(Path(args.index), Settings().datasets_dir, args.skip, args.collection)  # type: ignore[call-arg]
    print(json.dumps(res))
    if args.write:
        write_section("fresh", (
            "## Time to searchable (`python -m evals.bench_fresh`)\n\n"
            f"{N_NEW} new RealTime QA articles ingested by `rag ingest` in another process into an index of "
            f"{res['chunks_before']:,} chunks on one Chroma server; this already-serving process asks the first "
            f"one's title every 0.1 s (and kept answering other questions during the ingest). After the ingest "
            f"process exited: in the top 5 after {res['answered_s']} s "
            f"(dense search sees Chroma at once), found by BM25 after {res['bm25_s']} s (the serving process "
            "rechecks the index revision every 5 s, then loads the ingest's delta segment, not a rebuild). "
            f"Delta written: {res['delta_written']}. One run of commit {git_commit()}; {cpu_note()}.\n"
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
