"""Dates at the command line: --since/--until/--as-of, dates on citations, one-line errors, ingest --watch."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag import RagService
from tests.conftest import make_settings

RAG = [sys.executable, "-m", "rag.cli"]
JAN = (
    "---\ntitle: Istanbul round\npublished: 2025-01-10\n---\n"
    "Negotiators met in Istanbul to discuss the Black Sea grain corridor. The grain corridor talks in Istanbul "
    "ended without agreement on shipping insurance for cargo vessels.\n"
)
MAR = (
    "---\ntitle: Geneva signing\npublished: 2025/03/20\n---\n"
    "Negotiators signed the Black Sea grain corridor deal in Geneva. The grain corridor agreement signed in "
    "Geneva covers shipping insurance for cargo vessels.\n"
)
UNDATED = "The grain corridor was discussed by negotiators again. Shipping insurance remains a subject of debate.\n"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env["RAG_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return env


def _rag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAG, *args], capture_output=True, text=True, env=_env(tmp_path), timeout=300)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "jan.md").write_text(JAN)
    (root / "mar.md").write_text(MAR)
    (root / "undated.txt").write_text(UNDATED)
    return root


def test_cli_date_flags_and_errors(tmp_path: Path, corpus: Path) -> None:
    ing = _rag(tmp_path, "ingest", str(corpus), "--json", "-q")
    assert ing.returncode == 0, ing.stderr
    assert [Path(u["path"]).name for u in json.loads(ing.stdout)["undated"]] == ["undated.txt"]
    assert "undated.txt" in ing.stderr and "undated" in ing.stderr  # a warning names it

    q = "Where did negotiators sign the grain corridor deal?"
    out = _rag(tmp_path, "ask", q, "--json", "--as-of", "2025-02-01")
    assert out.returncode == 0, out.stderr
    ans = json.loads(out.stdout)
    assert {c["published"] for c in ans["citations"]} == {"2025-01-10"}
    assert {c["title"] for c in ans["contexts"]} == {"Istanbul round"}

    out = _rag(tmp_path, "ask", q, "--json", "--since", "2025-03-01")
    ans = json.loads(out.stdout)
    assert ans["citations"] and all(c["published"] == "2025-03-20" for c in ans["citations"])

    plain = _rag(tmp_path, "ask", q, "--since", "2025-03-01")  # the human-readable citation shows the date
    assert plain.returncode == 0 and "2025-03-20" in plain.stdout

    for args, needle in (
        (("--since", "2025/03/01"), "YYYY-MM-DD"),
        (("--since", "2025-04-01", "--until", "2025-03-01"), "after until"),
        (("--as-of", "tomorrow"), "YYYY-MM-DD"),
    ):
        bad = _rag(tmp_path, "ask", q, *args)
        assert bad.returncode != 0 and needle in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr

    chat = subprocess.run(
        [*RAG, "chat", "--json", "--until", "2025-02-01"], input=q + "\n", capture_output=True, text=True,
        env=_env(tmp_path), timeout=300,
    )
    assert chat.returncode == 0, chat.stderr
    assert {c["published"] for c in json.loads(chat.stdout.splitlines()[0])["citations"]} == {"2025-01-10"}


def _reader(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def _wait_for(lines: queue.Queue[str], needle: str, seen: list[str], timeout: float = 180) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no {needle!r} in the watcher's log:\n{''.join(seen)}")


def test_ingest_watch_adds_updates_removes_and_survives_bad_files(tmp_path: Path, corpus: Path) -> None:
    proc = subprocess.Popen(
        [*RAG, "ingest", "--watch", str(corpus)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env=_env(tmp_path),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "ready", seen)
        second = subprocess.run([*RAG, "ingest", "--watch", str(corpus)], capture_output=True, text=True,
                                env=_env(tmp_path), timeout=120)
        assert second.returncode == 1 and "Another `rag ingest --watch` already keeps" in second.stderr, second.stderr

        (corpus / "bad.json").write_text("{not json")
        assert "bad.json" in _wait_for(lines, "bad.json", seen)
        (corpus / "may.md").write_text(MAR.replace("2025/03/20", "2025-05-13").replace("Geneva", "Odesa"))
        line = _wait_for(lines, "may.md", seen)
        assert "1 added" in line
        (corpus / "jan.md").unlink()
        assert "removed" in _wait_for(lines, "jan.md", seen)
        assert proc.poll() is None, "the watcher survived a bad file"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    svc = RagService(make_settings(tmp_path / "data"))
    try:
        titles = {a["title"]: a["published"] for a in svc.list_articles()}
    finally:
        close = getattr(svc, "close", None)
        if callable(close):
            close()
    assert "Istanbul round" not in titles
    assert titles.get("Geneva signing") == "2025-03-20"
    assert titles.get("Odesa signing") == "2025-05-13"
