"""Shared fixtures: a clean environment, a temp data dir, a real Chroma index of the corpus."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag import RagService, Settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"


def datasets_dir() -> Path:
    return Path(os.environ.get("RAG_DATASETS_DIR") or REPO.parent / "shared" / "datasets")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if (key.startswith("RAG_") and key != "RAG_DATASETS_DIR") or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate a server a test started; kill it if it does not exit."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def make_settings(data_dir: Path, **kw: object) -> Settings:
    return Settings(data_dir=data_dir, corpus_dir=CORPUS, datasets_dir=datasets_dir(), _env_file=None, **kw)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def service(settings: Settings) -> RagService:
    return RagService(settings)


@pytest.fixture(scope="session")
def corpus_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RagService]:
    """The seed corpus ingested once into a real embedded Chroma (read-only use)."""
    svc = RagService(make_settings(tmp_path_factory.mktemp("corpus-index")))
    svc.ingest([CORPUS])
    yield svc


# A developer may point this at a data dir to reuse its golden eval index between runs.
_EVAL_DIR = os.environ.get("RAG_TEST_EVAL_DIR")


@pytest.fixture(scope="session")
def eval_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the golden eval (its index, corpus + RealTime QA distractors, is built once per session)."""
    return make_settings(Path(_EVAL_DIR) if _EVAL_DIR else tmp_path_factory.mktemp("eval-data"))
