"""`rag eval retrieval` on a small RealTime QA slice: three methods, reusable index, the match rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.realtimeqa import RtqaQuestion
from evals.retrieval import eligible_questions, split_of
from tests.conftest import datasets_dir

RTQA = datasets_dir() / "realtimeqa-2025"
ARTICLES = 100  # the first question whose answer is in an indexed article needs 59


def test_eligible_questions_follow_the_match_rule() -> None:
    qs = [
        RtqaQuestion("1", "q?", "AI", ("a",)),
        RtqaQuestion("2", "q?", "Paris", ("b",)),
        RtqaQuestion("3", "q?", "5", ("c",)),
    ]
    texts = {"a": "Investors bet on AI.", "b": "Comparison: parisian cafes", "c": "Up 15 per cent"}
    got = eligible_questions(qs, texts)
    assert [q.question.id for q in got] == ["1"] and got[0].short


def test_splits_follow_quiz_dates_in_both_formats() -> None:
    def q(d: str) -> RtqaQuestion:
        return RtqaQuestion("1", "q?", "a", (), d)

    assert [split_of(q(d)) for d in ("2025/01/01", "2025-03-31", "2025/04/01", "2025-06-27", "")] == [
        "dev", "dev", "test", "test", "undated"]


@pytest.mark.slow
@pytest.mark.skipif(not (RTQA / "articles.jsonl.gz").is_file(), reason=f"RealTime QA not found under {RTQA}")
def test_eval_retrieval_compares_methods_and_reuses_its_index(tmp_path: Path) -> None:
    index = tmp_path / "rtqa-index"
    cmd = [
        sys.executable,
        "-m",
        "rag.cli",
        "eval",
        "retrieval",
        "--realtimeqa",
        str(RTQA),
        "--articles",
        str(ARTICLES),
        "--index",
        str(index),
        "-k",
        "5",
        "--json",
    ]
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data")}
    first = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, timeout=1200).stdout)
    assert first["k"] == 5 and first["articles"] == ARTICLES and first["n"] >= 1
    assert first["n_short"] <= first["n"]
    for m in ("dense", "bm25", "hybrid"):
        hits = first["recall_at_k"][m] * first["n"]  # a share of the questions: a whole number of hits
        assert abs(hits - round(hits)) < 0.01, (m, first)
    assert max(first["recall_at_k"].values()) > 0.0  # the answer's own article is in a tiny index
    second = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, timeout=600).stdout)
    assert second["articles_added"] == 0 and second["recall_at_k"] == first["recall_at_k"]
    dev, test = (json.loads(subprocess.run([*cmd, "--split", s], capture_output=True, text=True, check=True,
                                           env=env, timeout=600).stdout) for s in ("dev", "test"))
    assert dev["split"] == "dev" and dev["n"] + test["n"] == first["n"]
    only_june = tmp_path / "june.jsonl"
    only_june.write_text(json.dumps({"id": "x", "date": "2025-06-20", "question": "q?", "answer": "a",
                                     "search_result_ids": []}) + "\n")
    r = subprocess.run([*cmd, "--questions", str(only_june), "--split", "dev"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 1 and "No question" in r.stderr and "dev split" in r.stderr
