"""What a BM25 merge costs: `python -m evals.bench_bm25 --data-dir .rag/bench-scale [--changed 0.05]`.

When the delta segment grows past its limit (5% of the index, rag.bm25), the next ingest rebuilds the whole
BM25 index. This times, each in a process of its own on the given index (its BM25 files are rewritten; the
store is only read): a full build that reads every chunk's text back from the store, and a merge in which a
share of the articles changed since the last full build (their chunks are read, every other chunk's row comes
from the term counts the full build saved). Both build the same index (tests/test_bm25_delta.py). Prints
seconds and each process's peak RSS; nothing is asserted and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from evals.bench_scale import git_commit, isolated
from evals.benchutil import own_peak_rss_mb
from rag import RagService, Settings


def _build(data_dir: str, changed: float) -> dict[str, Any]:
    from rag.bm25 import Reuse
    from rag.bm25build import COUNTS_FILE, SavedCounts

    logging.basicConfig(level=logging.WARNING)
    svc = RagService(Settings(data_dir=Path(data_dir)))  # type: ignore[call-arg]
    index, store = svc._bm25, svc._store
    revision = store.revision()
    reuse = None
    if changed:
        saved = SavedCounts.load(index.directory / COUNTS_FILE, store.chunks_id, index.header)
        if saved is None or saved.revision != revision:
            raise SystemExit("no saved term counts for this revision: run the full build first")
        articles = sorted(store.article_index())
        picked = set(random.Random(0).sample(articles, round(changed * len(articles))))
        reuse = Reuse(saved, set(), picked)
    t = time.perf_counter()
    index.rebuild(revision, reuse)
    return {"seconds": round(time.perf_counter() - t, 2), "chunks": index.size(),
            "peak_rss_mib": round(own_peak_rss_mb()), "articles_changed": len(reuse.articles) if reuse else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(".rag/bench-scale"))
    p.add_argument("--changed", type=float, default=0.05, help="share of articles changed since the full build")
    args = p.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    full = isolated(_build, str(args.data_dir), 0.0)
    merge = isolated(_build, str(args.data_dir), args.changed)
    print(json.dumps({"commit": git_commit(), "load_1min": round(os.getloadavg()[0], 2),
                      "full_build": full, "merge_with_saved_counts": merge}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
