"""`rag eval` end to end on the golden set (the CI gate), and the report files it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.runner import BASELINE_PATH, DISTRACTORS, EvalRun, load_baseline, regressions, write_run
from rag import Settings
from tests.conftest import CORPUS, datasets_dir

ITEM_KEYS = {"id", "kind", "split", "question", "answer", "refused", "citations", "metrics", "passed", "failures"}
GROUPS = ("retrieval_", "answer_", "faithfulness", "citation_", "refusal_", "latency_")


def test_baseline_thresholds_are_dev_values_of_quality_metrics() -> None:
    b = load_baseline()
    assert b["dataset"] == "golden" and b["split"] == "dev" and b["distractors"] == DISTRACTORS
    assert b["thresholds"] and not any(k.startswith("latency") for k in b["thresholds"])
    for name, t in b["thresholds"].items():
        assert t <= b["metrics"][name], name  # a threshold is never above what dev measured
    assert regressions({n: v - 0.01 for n, v in b["thresholds"].items()}, b) == sorted(b["thresholds"])
    assert regressions(dict(b["thresholds"]), b) == []


def test_write_run_moves_the_previous_latest(tmp_path: Path) -> None:
    latest = tmp_path / "evals" / "latest"
    first = write_run(
        EvalRun(
            {
                "dataset": "golden",
                "mode": "extractive",
                "n": 0,
                "metrics": {},
                "regressions": [],
                "n_by_split": {},
                "distractors": 0,
                "passed": 0,
                "failed": 0,
            }
        ),
        latest,
    )
    write_run(EvalRun(json.loads((first / "summary.json").read_text()) | {"n": 1}), latest)
    older = [p for p in latest.parent.iterdir() if p.name != "latest"]
    assert len(older) == 1 and json.loads((older[0] / "summary.json").read_text())["n"] == 0
    assert json.loads((latest / "summary.json").read_text())["n"] == 1


def test_rag_eval_passes_the_committed_thresholds(eval_settings: Settings, tmp_path: Path) -> None:
    """The CI gate: the golden eval in extractive mode, no quality metric below its committed threshold."""
    if not (datasets_dir() / "realtimeqa-2025" / "articles.jsonl.gz").is_file():
        pytest.skip(f"RealTime QA absent under {datasets_dir()}: the baseline (with distractors) cannot be compared")
    out = tmp_path / "report"
    env = {**os.environ, "RAG_CORPUS_DIR": str(CORPUS), "RAG_DATASETS_DIR": str(datasets_dir())}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag.cli",
            "--data-dir",
            str(eval_settings.data_dir),
            "eval",
            "--mode",
            "extractive",
            "--json",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    summary = json.loads(proc.stdout)
    assert summary["regressions"] == [], (summary["regressions"], proc.stderr[-2000:])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert summary["baseline_comparable"] and summary["n"] >= 30 and summary["distractors"] == DISTRACTORS
    assert set(summary["metrics_by_split"]) == {"dev", "test"}
    assert summary["baseline"] == load_baseline(BASELINE_PATH)["metrics"]
    for g in GROUPS:
        assert any(k.startswith(g) for k in summary["metrics"]), g
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items) == summary["n"] and all(set(i) >= ITEM_KEYS for i in items)
    assert summary["metrics"]["citation_quote_exact"] == 1.0
    assert (out / "report.md").read_text().startswith("# Eval report")
