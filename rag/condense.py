"""Offline follow-up handling: a history-aware standalone question for retrieval."""

from __future__ import annotations

from rag.text import STOPWORDS, terms, words
from rag.types import Turn

_ANAPHORA = frozenset(
    [
        "that",
        "this",
        "it",
        "its",
        "they",
        "them",
        "their",
        "those",
        "these",
        "there",
        "he",
        "she",
        "him",
        "his",
        "her",
        "such",
        "same",
        "former",
        "latter",
    ]
)
_OPENERS = ("and ", "but ", "so ", "also ", "what about", "how about", "and what", "why", "how so", "then ")
MAX_CONTEXT_TERMS = 6


def is_followup(question: str) -> bool:
    """Does the question lean on the conversation (anaphora, a connective opener, or no topic)?"""
    q = question.strip().lower()
    ws = words(q)
    n_terms = len(terms(q))
    return q.startswith(_OPENERS) or n_terms <= 1 or (n_terms <= 3 and any(w in _ANAPHORA for w in ws))


def context_terms(text: str, exclude: str) -> list[str]:
    """Content words of text in order, without those already in exclude."""
    have = set(terms(exclude))
    out: list[str] = []
    seen: set[str] = set()
    for raw in text.replace("(", " ").replace(")", " ").split():
        w = raw.strip("?.,!;:\"'“”‘’")
        if not w or w.lower().replace("’", "'").removesuffix("'s") in STOPWORDS:
            continue
        t = terms(w)
        if not t or t[0] in have or t[0] in seen:
            continue
        seen.add(t[0])
        out.append(w.removesuffix("'s").removesuffix("’s"))
    return out[:MAX_CONTEXT_TERMS]


def condense(question: str, history: list[Turn]) -> str:
    """The question with the previous turn's key terms appended when it is a follow-up."""
    if not history or not is_followup(question):
        return question
    prev = history[-1].standalone_question or history[-1].question
    extra = context_terms(prev, question)
    return f"{question} ({' '.join(extra)})" if extra else question
