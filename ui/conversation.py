"""One browser session's conversation: its exchanges, and exports as Markdown and JSON."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rag import Answer, Turn
from ui.render import md


@dataclass
class Exchange:
    """A question and what came back: an Answer, or an error message."""

    question: str
    mode: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    answer: Answer | None = None
    error: str | None = None
    model_error: bool = False  # the LLM failed: offer to answer offline
    retried: bool = False
    steps: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Conversation:
    """Lives in st.session_state; its turns are passed to the service on every question."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def history(self) -> list[Turn]:
        return [
            Turn(e.question, e.answer.answer, e.answer.standalone_question)
            for e in self.exchanges
            if e.answer is not None
        ]

    def find(self, exchange_id: str) -> Exchange | None:
        return next((e for e in self.exchanges if e.id == exchange_id), None)


def to_markdown(conv: Conversation) -> str:
    """The conversation as a Markdown document: questions, answers, and cited quotes.

    Everything that came from users or articles is escaped (as on the page), so article HTML and links
    stay text in any Markdown viewer.
    """
    lines = ["# Conversation", ""]
    for e in conv.exchanges:
        lines += [f"## {md(e.question)}", ""]
        if e.answer is None:
            lines += [f"_Error: {md(e.error or '')}_", ""]
            continue
        a = e.answer
        lines += [f"_{'refused' if a.refused else 'answer'} ({a.mode})_", "", md(a.answer), ""]
        if a.latest_source:
            lines += [f"_Latest source cited: published {a.latest_source}_", ""]
        for c in a.citations:
            meta = ", ".join(x for x in (c.source, c.published or "undated", c.url) if x)
            lines.append(f"- \\[{c.n}\\] {md(c.title)}" + (f" ({md(meta)})" if meta else ""))
            lines.append(f"  > {md(c.quote)}".replace("  \n", "  \n  > "))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_json(conv: Conversation) -> str:
    """The conversation as JSON: each turn carries the contracts' answer object."""
    turns: list[dict[str, Any]] = []
    for e in conv.exchanges:
        turn: dict[str, Any] = {"question": e.question, "mode": e.mode}
        if e.answer is not None:
            turn["answer"] = e.answer.to_dict()
        else:
            turn["error"] = e.error
        turns.append(turn)
    doc = {
        "conversation_id": conv.id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "turns": turns,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)
