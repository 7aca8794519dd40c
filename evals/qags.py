"""Loader for ../shared/datasets/qags (QAGS CNN/DM and XSum: summary sentences with crowd votes), read in place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag import ConfigError

QAGS_CNNDM = "qags/mturk_cnndm.jsonl"
QAGS_XSUM = "qags/mturk_xsum_dev.jsonl"


@dataclass(frozen=True)
class QagsItem:
    """One summary sentence, its article, and whether most workers said the article supports it."""

    article_id: int
    article: str
    sentence: str
    votes_yes: int
    votes: int

    @property
    def label(self) -> int:
        return int(2 * self.votes_yes > self.votes)


def load_qags(path: Path, limit_articles: int | None = None) -> list[QagsItem]:
    """Every summary sentence of the file (articles numbered in file order), majority vote as label."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"Cannot read QAGS file {path} ({exc.strerror}) - pass --qags PATH to mturk_cnndm.jsonl."
        ) from exc
    items: list[QagsItem] = []
    for n, line in enumerate(ln for ln in lines if ln.strip()):
        if limit_articles is not None and n >= limit_articles:
            break
        try:
            rec = json.loads(line)
            for s in rec["summary_sentences"]:
                votes = [r["response"].strip().lower() for r in s["responses"]]
                items.append(QagsItem(n, rec["article"], s["sentence"], sum(v == "yes" for v in votes), len(votes)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: record {n + 1} is not a QAGS record ({exc.__class__.__name__}).") from exc
    return items
