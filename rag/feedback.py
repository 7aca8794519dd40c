"""Answer feedback: one JSON line per thumbs up/down, appended under the data dir."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError
from rag.types import Answer

_LOCK = threading.Lock()  # sessions of one process append to the same file


def record_feedback(
    settings: Settings, answer: Answer, score: int, *, conversation_id: str = "", comment: str = ""
) -> dict[str, Any]:
    """Append one feedback record (score 1 = thumbs up, 0 = thumbs down) and return it."""
    if score not in (0, 1):
        raise ValueError(f"score must be 0 or 1, not {score!r}")
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "score": score,
        "rating": "up" if score else "down",
        "conversation_id": conversation_id,
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.answer,
        "refused": answer.refused,
        "mode": answer.mode,
        "citations": [asdict(c) for c in answer.citations],
        "comment": comment,
    }
    path = settings.feedback_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with _LOCK, path.open("a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write feedback to {path} ({exc.strerror or exc.__class__.__name__}) - "
            "check that RAG_DATA_DIR is writable."
        ) from exc
    return record


def read_feedback(settings: Settings) -> list[dict[str, Any]]:
    """Every feedback record so far (lines that are not JSON objects are left out)."""
    path: Path = settings.feedback_path
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out
