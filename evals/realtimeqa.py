"""Loaders for ../shared/datasets/realtimeqa-2025 (read in place, never copied) and its match rule."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

ARTICLES = "realtimeqa-2025/articles.jsonl.gz"
QUESTIONS = "realtimeqa-2025/questions-2025H1.jsonl"


def articles_path(datasets_dir: Path) -> Path:
    return datasets_dir / ARTICLES


def iter_articles(datasets_dir: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    with gzip.open(articles_path(datasets_dir), "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if limit is not None and n >= limit:
                return
            yield json.loads(line)


def write_subset(datasets_dir: Path, out: Path, limit: int) -> Path:
    """The first `limit` articles as a .jsonl file (a temp input for `rag ingest`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for rec in iter_articles(datasets_dir, limit):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return out


def write_ids_subset(datasets_dir: Path, out: Path, ids: list[str]) -> Path:
    """The articles with these ids, in the listed order, as a .jsonl file; a missing id is an error."""
    wanted = set(ids)
    found = {rec["id"]: rec for rec in iter_articles(datasets_dir) if rec.get("id") in wanted}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValueError(f"{len(missing)} listed article ids are not in {articles_path(datasets_dir)}: {missing[:3]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for i in ids:
            fh.write(json.dumps(found[i], ensure_ascii=False) + "\n")
    return out


@dataclass(frozen=True)
class RtqaQuestion:
    id: str
    question: str
    answer: str
    search_result_ids: tuple[str, ...]
    date: str = ""  # the quiz date as the file writes it (YYYY/MM/DD)


def load_questions(path: Path) -> list[RtqaQuestion]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            ids = tuple(d.get("search_result_ids") or ())
            out.append(RtqaQuestion(d["id"], d["question"], d["answer"], ids, str(d.get("date") or "")))
    return out


@lru_cache(maxsize=4096)
def _pattern(answer: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(answer.strip()) + r"(?!\w)", re.IGNORECASE)


def contains_answer(text: str, answer: str) -> bool:
    """The contracts' match rule: case-insensitive, on word boundaries."""
    return bool(answer.strip()) and _pattern(answer).search(text) is not None


def is_short(answer: str) -> bool:
    return len(answer.split()) == 1
