"""A `rag ingest` killed with SIGKILL mid-way and run again ends equal to a clean ingest."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import datasets_dir, make_settings

from rag import RagService

N_ARTICLES = 200  # a few hundred at most in CI (see the `slow` marker)


def subset(out: Path) -> Path:
    """The first N_ARTICLES RealTime QA articles of 500-2,000 characters (short keeps CI fast)."""
    src = datasets_dir() / "realtimeqa-2025" / "articles.jsonl.gz"
    if not src.exists():
        pytest.skip(f"RealTime QA articles not found at {src} - set RAG_DATASETS_DIR to the shared datasets folder")
    n = 0
    with gzip.open(src, "rt", encoding="utf-8") as fh, out.open("w", encoding="utf-8") as w:
        for line in fh:
            rec = json.loads(line)
            if 500 <= len(rec["text"]) <= 2000:
                w.write(line)
                n += 1
                if n == N_ARTICLES:
                    break
    return out


def ingest_cmd(data_dir: Path, path: Path) -> list[str]:
    return [sys.executable, "-m", "rag.cli", "--data-dir", str(data_dir), "ingest", str(path), "--json", "-q"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}


def probe(data: Path) -> tuple[int, bool]:
    """Registered articles and BM25 freshness, read in a child (one process at a time per embedded index)."""
    code = (
        "import json, sys; from pathlib import Path; from rag import RagService, Settings; "
        "svc = RagService(Settings(data_dir=Path(sys.argv[1]), _env_file=None)); "
        "st = svc.stats(); "
        "print(json.dumps([st['articles'], st['articles'] > 0 and svc._bm25.is_current()]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(data)], check=True, capture_output=True, text=True, env=env())
    done, current = json.loads(out.stdout)
    return int(done), bool(current)


def snapshot(svc: RagService) -> dict[str, tuple[str, int, int, np.ndarray]]:
    got = svc._store.chunks.get(include=["documents", "metadatas", "embeddings"])
    return {
        cid: (doc, int(meta["start"]), int(meta["end"]), np.asarray(emb, dtype=np.float32))
        for cid, doc, meta, emb in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_then_resume_matches_clean_ingest(tmp_path: Path) -> None:
    src = subset(tmp_path / "subset.jsonl")
    ref_dir = tmp_path / "reference"
    t = time.monotonic()
    subprocess.run(ingest_cmd(ref_dir, src), check=True, capture_output=True, env=env(), cwd=tmp_path)
    full = time.monotonic() - t
    ref = RagService(make_settings(ref_dir))
    assert ref._store.article_count() == N_ARTICLES

    # Kill part-way; if the kill landed before the first commit or after the last, try another point.
    data = tmp_path / "resumed"
    for fraction in (0.6, 0.8, 0.4, 0.9):
        proc = subprocess.Popen(
            ingest_cmd(data, src), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), cwd=tmp_path
        )
        try:
            proc.wait(full * fraction)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        done, bm25_current = probe(data)
        if 0 < done < N_ARTICLES:
            break
        shutil.rmtree(data)
    else:
        pytest.fail("could not kill the ingest between its first and last commit")
    # The killed run left the BM25 state stale (the revision moved before the first write).
    assert not bm25_current

    out = subprocess.run(ingest_cmd(data, src), check=True, capture_output=True, text=True, env=env(), cwd=tmp_path)
    report = json.loads(out.stdout)
    assert report["articles"]["unchanged"] == done
    assert report["articles"]["added"] == N_ARTICLES - done

    resumed = RagService(make_settings(data))
    want, got = snapshot(ref), snapshot(resumed)
    assert resumed._store.count() == len(got) == len(want)  # no duplicate chunk
    assert set(got) == set(want)  # no missing (or stray) chunk
    for cid, (doc, start, end, vec) in want.items():
        assert got[cid][:3] == (doc, start, end)
        assert float(got[cid][3] @ vec) > 0.99  # int8 dynamic quantisation varies a little with the batch
    assert set(resumed._store.article_index()) == set(ref._store.article_index())
    # BM25 was rebuilt after the resumed run and covers exactly the stored chunks.
    assert resumed._bm25.is_current()
    meta = json.loads((resumed._bm25.directory / "meta.json").read_text())
    assert sorted(meta["ids"]) == sorted(got)
