"""The embedded index under concurrent processes and damaged files: never corrupted, always one clear line."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import RagService
from tests.conftest import CORPUS, make_settings

BUSY = "in use by process"


def rag(data: Path, *args: str | bytes, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"rag.cli",
            b"--data-dir",
            str(data).encode(),
            *(a if isinstance(a, bytes) else a.encode() for a in args),
        ],
        input=stdin,
        capture_output=True,
        env=_env(**env),
        timeout=600,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    return {**env, "ANONYMIZED_TELEMETRY": "False", **extra}


def spawn(data: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )


def write_articles(folder: Path, n: int, topic: str) -> Path:
    """n short, distinct articles (one chunk each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{topic}-{i:04d}.txt").write_text(
            f"The {topic} council met on day {i} and approved plan number {i * 7 + 3} for the {topic} harbour. "
            f"Officials said the {topic} budget for item {i} would rise by {i % 13 + 2} percent next year.",
            encoding="utf-8",
        )
    return folder


def doctor(data: Path) -> dict[str, object]:
    r = rag(data, "doctor", "--json")
    return dict(json.loads(r.stdout))


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert r.returncode == 1 and len(lines) == 1, (r.returncode, r.stderr[-2000:])
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr
    return lines[0]


# -- one owner ---------------------------------------------------------------------------------
def test_a_second_process_is_told_who_owns_the_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = RagService(make_settings(data))
    svc.ingest([CORPUS])  # this test process now owns the embedded index
    line = one_line_error(rag(data, "stats", "--json"))
    assert f"{BUSY} {os.getpid()}" in line and "RAG_CHROMA_HOST" in line and "Library page" in line
    svc.close()
    r = rag(data, "stats", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["articles"] == 1
    assert svc.stats()["articles"] == 1  # the service takes the index back on its next call


def test_two_ingests_at_once_never_corrupt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = write_articles(tmp_path / "a", 60, "northport")
    b = write_articles(tmp_path / "b", 60, "southfield")
    procs = [spawn(data, "ingest", str(a), "--json", "-q"), spawn(data, "ingest", str(b), "--json", "-q")]
    results = [
        (p.wait(600), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs if p.stdout and p.stderr
    ]
    ok = [r for r in results if r[0] == 0]
    assert ok, results
    for code, _, err in results:
        assert code in (0, 1) and "unexpected" not in err, err
        if code == 1:
            assert BUSY in err
    health = doctor(data)
    assert health["healthy"] and health["articles"] == 60 * len(ok) == health["chunks"], health
    for folder in (a, b):  # whichever was refused now runs; all 120 are then indexed and readable
        assert rag(data, "ingest", str(folder), "--json", "-q").returncode == 0
    health = doctor(data)
    assert health["healthy"] and health["articles"] == 120 == health["chunks"], health


def test_asks_during_an_ingest_answer_or_refuse_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert rag(data, "ingest", str(CORPUS), "-q").returncode == 0
    ingest = spawn(data, "ingest", str(write_articles(tmp_path / "more", 150, "eastbay")), "--json", "-q")
    outcomes = []
    while ingest.poll() is None and len(outcomes) < 20:
        r = rag(data, "ask", "What does Russia want?", "--json")
        assert r.returncode in (0, 1), r.stderr  # never a crash signal
        if r.returncode == 0:
            assert json.loads(r.stdout)["citations"]
        else:
            assert BUSY in one_line_error(r)
        outcomes.append(r.returncode)
    assert ingest.wait(600) == 0 and outcomes
    health = doctor(data)
    assert health["healthy"] and health["articles"] == 151, health


# -- damage detected and repaired --------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Over a thousand chunks, so that Chroma has written its HNSW files (below that it keeps vectors in its log)."""
    root = tmp_path_factory.mktemp("big-index")
    data = root / "data"
    svc = RagService(make_settings(data))
    svc.ingest([write_articles(root / "articles", 1100, "westmoor")])
    svc.close()
    return data


def _vector_dir(data: Path) -> Path:
    con = sqlite3.connect(data / "chroma" / "chroma.sqlite3")
    try:
        (seg,) = con.execute(
            "select s.id from segments s join collections c on s.collection = c.id "
            "where c.name = 'articles' and s.scope = 'VECTOR'"
        ).fetchone()
    finally:
        con.close()
    return data / "chroma" / str(seg)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate data_level0.bin", "delete index_metadata.pickle"])
def test_damaged_vector_index_is_named_then_repaired(big_index: Path, tmp_path: Path, damage: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(big_index, data)
    hnsw = _vector_dir(data)
    if damage.startswith("truncate"):
        (hnsw / "data_level0.bin").write_bytes(b"")
    else:
        (hnsw / "index_metadata.pickle").unlink()
    question = "What did the westmoor council approve on day 17?"
    assert "rag doctor --repair" in one_line_error(rag(data, "ask", question))
    assert "rag doctor --repair" in one_line_error(rag(data, "ingest", str(big_index.parent / "articles"), "-q"))
    health = doctor(data)
    assert not health["healthy"] and any("vectors unreadable" in str(p) for p in health["problems"])  # type: ignore[attr-defined]
    r = rag(data, "doctor", "--repair", "--json")
    assert r.returncode == 0, r.stderr
    repaired = json.loads(r.stdout)
    assert repaired["healthy"] and repaired["articles"] == 1100 == repaired["chunks"], repaired
    answer = json.loads(rag(data, "ask", question, "--json").stdout)
    assert "day 17 " in " ".join(c["quote"] for c in answer["citations"])


def test_damaged_bm25_file_is_rebuilt_on_the_next_question(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert rag(data, "ingest", str(CORPUS), "-q").returncode == 0
    arrays = list((data / "bm25").rglob("data.csc.index.npy"))
    assert arrays
    arrays[0].write_bytes(b"")
    r = rag(data, "ask", "What does Russia want?", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["citations"] and "rebuilding" in r.stderr
    assert doctor(data)["healthy"]


# -- bounded inputs, clear errors ----------------------------------------------------------------------
def test_oversized_article_is_skipped_by_name_and_nothing_ingested_fails(tmp_path: Path) -> None:
    big = tmp_path / "in" / "huge-log.txt"
    big.parent.mkdir()
    big.write_text("A line of a very long log file that is not news.\n" * 2000, encoding="utf-8")  # ~100 KB
    t0 = time.monotonic()
    r = rag(tmp_path / "data", "ingest", str(big.parent), "-q", RAG_MAX_ARTICLE_MB="0.05")
    assert time.monotonic() - t0 < 120
    assert "huge-log.txt" in r.stderr and "RAG_MAX_ARTICLE_MB" in r.stderr
    assert "nothing was ingested" in one_line_error(r)


def test_link_loops_and_broken_links_are_named(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_articles(src, 1, "lakeside")
    (src / "loop1").symlink_to("loop2")
    (src / "loop2").symlink_to("loop1")
    (src / "gone.txt").symlink_to(tmp_path / "missing.txt")
    r = rag(tmp_path / "data", "ingest", str(src), "--json", "-q")
    assert r.returncode == 0, r.stderr
    skipped = {Path(s["path"]).name for s in json.loads(r.stdout)["skipped"]}
    assert skipped == {"loop1", "loop2", "gone.txt"}
    assert r.stderr.count("link") >= 3


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seed") / "data"
    assert rag(data, "ingest", str(CORPUS), "-q").returncode == 0
    return data


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", b"What does Russia want \xff\xfe?"], "not valid UTF-8"),
        (["ask", "What does Russia want?", "-k", "-3"], "k must be between 1 and 50"),
        (["ask", "What does Russia want?", "-k", "0"], "k must be between 1 and 50"),
        (["ask", "What does Russia want?", "-k", "51"], "k must be between 1 and 50"),
    ],
)
def test_bad_question_input_is_one_line(seed_index: Path, args: list[str | bytes], needle: str) -> None:
    assert needle in one_line_error(rag(seed_index, *args))


def test_chat_survives_a_line_that_is_not_utf8(seed_index: Path) -> None:
    r = rag(seed_index, "chat", "--json", stdin=b"What does Russia want \xff?\nWhat does Russia want?\n")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 2 and "not valid UTF-8" in lines[0]["error"] and lines[1]["citations"]
    assert r.returncode == 1 and "Traceback" not in r.stderr
