"""The golden set: loading items and asking them (follow-ups as conversations)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag import Answer, RagService, Turn

GOLDEN_PATH = Path(__file__).resolve().parent / "datasets" / "golden.jsonl"
NEWS_PATH = GOLDEN_PATH.with_name("news.jsonl")  # over a fixed RealTime QA corpus: news_articles.txt


def corpus_ids(dataset: Path) -> list[str] | None:
    """The fixed corpus of a golden file (ids in `<stem>_articles.txt` beside it), or None: corpus/ + distractors."""
    listing = dataset.with_name(f"{dataset.stem}_articles.txt")
    return listed_ids(listing) if listing.is_file() else None


def listed_ids(listing: Path) -> list[str]:
    """The article ids of a listing file: one per line, `#` comments and blank lines skipped."""
    lines = (ln.strip() for ln in listing.read_text(encoding="utf-8").splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


@dataclass(frozen=True)
class GoldenItem:
    id: str
    kind: str
    turns: tuple[str, ...]
    key_facts: tuple[tuple[str, ...], ...]
    evidence: str
    refuse: bool
    split: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def question(self) -> str:
        return self.turns[-1]


_FIELDS = frozenset({"id", "kind", "turns", "question", "key_facts", "evidence", "refuse", "split"})


def load_golden(path: Path = GOLDEN_PATH) -> list[GoldenItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        d = json.loads(line)
        turns = tuple(d["turns"]) if "turns" in d else (d["question"],)
        items.append(
            GoldenItem(
                id=d["id"],
                kind=d["kind"],
                turns=turns,
                key_facts=tuple(tuple(g) for g in d.get("key_facts", [])),
                evidence=d.get("evidence", ""),
                refuse=bool(d.get("refuse", d["kind"] == "unanswerable")),
                split=d.get("split", "dev"),
                extra={k: v for k, v in d.items() if k not in _FIELDS},
            )
        )
        if not items[-1].turns[-1].strip():
            raise ValueError(f"{path}:{n}: empty question")
    return items


def ask_item(service: RagService, item: GoldenItem, mode: str | None = None, k: int | None = None) -> Answer:
    """Ask every turn of the item in one conversation; return the last answer."""
    history: list[Turn] = []
    answer: Answer | None = None
    for q in item.turns:
        answer = service.ask(q, history=history, mode=mode, k=k)
        history.append(Turn(q, answer.answer, answer.standalone_question))
    assert answer is not None
    return answer
