"""An optional LLM judge, RAGAS-style: split a statement into claims, ask which ones the passage supports.

Off by default; `rag eval judge --judge llm [--limit N]` scores it on a QAGS file with the configured model.
The model must answer strict JSON; the parser accepts it inside code fences or prose, and a reply it cannot
read counts as a parse failure (reported, and scored as not supported) rather than a guess.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from evals.qags import load_qags
from rag import ConfigError, Settings

PROMPT = """Split the statement into short, self-contained claims. For each claim, decide whether the passage
supports it (everything in the claim is stated or clearly implied by the passage).
Reply with JSON only, in exactly this form:
{{"claims": [{{"claim": "...", "supported": true}}, {{"claim": "...", "supported": false}}]}}

Passage:
{passage}

Statement: {statement}
JSON:"""
MAX_REPLY_TOKENS = 300  # a sentence has a handful of claims; a small model otherwise rambles until it times out
MAX_PASSAGE_CHARS = 6000  # QAGS articles are 1,800-2,100 characters on average; a small model's context is 2,048+
_TRUE = {"true", "yes", "supported", "1"}
_FALSE = {"false", "no", "not supported", "unsupported", "0"}


def parse_verdicts(text: str) -> list[bool] | None:
    """The claims' verdicts from a model reply, or None when no readable JSON verdict is in it.

    Reads the first JSON object or array anywhere in the text (code fences and prose around it are ignored);
    accepts {"claims": [...]}, a bare list, and verdicts as booleans or "yes"/"no"/"supported" strings.
    """
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            obj, _ = decoder.raw_decode(text[m.start() :])
        except ValueError:
            continue
        items = obj.get("claims", [obj]) if isinstance(obj, dict) else obj  # one bare claim object is a list of one
        if not isinstance(items, list):
            continue
        out = [v for v in (_verdict(i) for i in items) if v is not None]
        if out:
            return out
    return None


def _verdict(item: Any) -> bool | None:
    v = item.get("supported", item.get("verdict")) if isinstance(item, dict) else item
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        s = v.strip().lower()
        return True if s in _TRUE else False if s in _FALSE else None
    return None


class LLMJudge:
    """Support = the share of the statement's claims that the model says the passage supports."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.parse_failures = 0

    def score(self, claim: str, evidence: str) -> float:
        prompt = PROMPT.format(passage=evidence[:MAX_PASSAGE_CHARS], statement=claim)
        reply = self.model.invoke(prompt, max_tokens=MAX_REPLY_TOKENS)
        verdicts = parse_verdicts(str(getattr(reply, "content", reply)))
        if verdicts is None:
            self.parse_failures += 1
            return 0.0
        return sum(verdicts) / len(verdicts)


def model_from_settings(settings: Settings) -> Any:
    if not settings.llm_configured:
        raise ConfigError(
            "No LLM is configured for --judge llm - set RAG_LLM_BASE_URL (and RAG_LLM_MODEL) or OPENAI_API_KEY."
        )
    from rag.llm import build_chat_model

    return build_chat_model(settings)


def evaluate_llm_judge(path: Path, limit_articles: int | None, judge: LLMJudge) -> dict[str, Any]:
    """The LLM judge's agreement with the QAGS majority vote (supported = every claim supported)."""
    items = load_qags(path, limit_articles)
    labels = np.array([i.label for i in items])
    if len(set(labels.tolist())) < 2:
        raise ConfigError(f"{path}: the labels need both classes to measure agreement - use more articles.")
    scores = np.array([judge.score(i.sentence, i.article) for i in items])
    return {
        "judge": "llm",
        "n": len(items),
        "balanced_accuracy": round(float(balanced_accuracy_score(labels, scores >= 1.0)), 4),
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "parse_failures": judge.parse_failures,
        "note": "supported when the model says every claim is supported; unreadable replies count as unsupported",
    }
