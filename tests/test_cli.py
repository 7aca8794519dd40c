"""The CLI as a user runs it: real processes, JSON on stdout only, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS


def rag(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env["RAG_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    r = rag(d, "ingest", str(CORPUS), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["articles"]["added"] == 1
    return d


def test_ask_json_is_the_answer_object(data_dir: Path) -> None:
    r = rag(data_dir, "ask", "What does Russia want?", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)  # stdout holds exactly one JSON object
    assert d["question"] == "What does Russia want?" and not d["refused"] and d["citations"]
    assert all(f"[{c['n']}]" in d["answer"] for c in d["citations"])


def test_ask_text_shows_sources(data_dir: Path) -> None:
    r = rag(data_dir, "ask", "Where did the latest round of negotiations take place?")
    assert r.returncode == 0 and "Geneva" in r.stdout and "[1]" in r.stdout
    assert "title derived from text" in r.stdout


def test_chat_keeps_the_conversation_across_lines(data_dir: Path) -> None:
    stdin = "What did ISW say about security guarantees?\n\nAnd what is Russia's stance on that?\n"
    r = rag(data_dir, "chat", "--json", stdin=stdin)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[1]["standalone_question"] != lines[1]["question"]
    assert "rejected" in lines[1]["answer"]


def test_reingest_reports_unchanged(data_dir: Path) -> None:
    r = rag(data_dir, "ingest", str(CORPUS), "--json")
    assert json.loads(r.stdout)["articles"] == {"added": 0, "updated": 0, "unchanged": 1, "removed": 0}


def test_stats(data_dir: Path) -> None:
    d = json.loads(rag(data_dir, "stats", "--json").stdout)
    assert d["articles"] == 1 and d["chunks"] > 1 and d["mode"] == "extractive"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", ""], "empty"),
        (["ask", "x" * 2500], "limit"),
        (["ingest", "/no/such/path"], "no such file"),
        (["ask", "What?", "--mode", "llm"], "RAG_LLM_BASE_URL"),
    ],
)
def test_errors_are_one_line_and_nonzero(data_dir: Path, args: list[str], needle: str) -> None:
    r = rag(data_dir, *args)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_ask_without_index(tmp_path: Path) -> None:
    r = rag(tmp_path / "empty", "ask", "What does Russia want?", "--json")
    assert r.returncode != 0 and "rag ingest" in r.stderr and r.stdout == ""


def test_a_command_plugin_that_fails_to_load_says_why(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """`rag eval` comes from an entry point; if it cannot load, using it is a clear error, never a missing command."""
    from importlib.metadata import EntryPoint

    from rag.cli import PLUGIN_GROUP, main

    broken = EntryPoint(name="eval", value="evals.no_such_module:register", group=PLUGIN_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [broken] if group == PLUGIN_GROUP else [])
    assert main(["eval", "--json"]) == 1
    err = capsys.readouterr().err
    assert "`rag eval` could not be loaded" in err and "no_such_module" in err and "make install" in err


def test_the_installed_eval_command_is_registered() -> None:
    from rag.cli import build_parser

    args = build_parser().parse_args(["eval", "retrieval", "--realtimeqa", "x"])
    assert args.func.__module__ == "evals.cli"


def test_missing_calibration_and_baseline_are_errors(tmp_path: Path) -> None:
    from evals.runner import load_baseline
    from rag import Calibration, ConfigError

    with pytest.raises(ConfigError, match=r"evals\.calibrate"):
        Calibration.load(tmp_path / "calibration.json")
    (tmp_path / "baseline.json").write_text("{not json")
    with pytest.raises(ConfigError, match="--update-baseline"):
        load_baseline(tmp_path / "baseline.json")
    with pytest.raises(ConfigError, match="missing or unreadable"):
        load_baseline(tmp_path / "absent.json")
    assert load_baseline(tmp_path / "absent.json", allow_missing=True) == {}
