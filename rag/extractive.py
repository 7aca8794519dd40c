"""The offline answerer: a news brief of verbatim sentences from the prepared passages, each with its [n]."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from rag import answer_type, brief
from rag.calibration import Calibration
from rag.dates import wants_recency
from rag.gate import Candidate
from rag.stages import Prepared
from rag.types import Answer


class ExtractiveAnswerer:
    """Verbatim sentences of the retrieved passages, each carrying its [n]."""

    mode = "extractive"

    def __init__(self, max_sentences: int, calibration: Calibration) -> None:
        self.max_sentences = max_sentences
        self.calibration = calibration

    def stream(self, prepared: Prepared) -> Iterator[str | Answer]:
        """A news brief: grouped by article under source and date (rag.brief); metadata questions from metadata."""
        question = prepared.search_question
        candidates = list(prepared.candidates)
        field_name = brief.metadata_field(question)
        made = brief.metadata_answer(field_name, candidates) if field_name else None
        if made is None:
            candidates = _named_first(question, candidates, self.calibration.name_bonus)
            chosen = brief.select(candidates, self.max_sentences, self.calibration, brief.is_broad(question))
            chosen = _with_value(question, candidates, chosen, self.calibration, self.max_sentences)
            made = brief.compose(chosen, newest_first=wants_recency(question))
        for i, (label, idx) in enumerate(made.groups):
            pieces = " ".join(f"{made.sentences[j].text} [{made.sentences[j].citations[0]}]" for j in idx)
            yield ("" if i == 0 else "\n\n") + f"{label}: {pieces}"
        yield Answer(
            question=prepared.question,
            standalone_question=prepared.standalone_question,
            answer=made.text,
            refused=False,
            mode=self.mode,
            citations=made.citations,
            sentences=made.sentences,
            contexts=list(prepared.passages),
            relevance=prepared.relevance,
        )


def _with_value(
    question: str, candidates: list[Candidate], chosen: list[Candidate], cal: Calibration, limit: int
) -> list[Candidate]:
    """A question that asks for an amount, a number or a date is answered first by the best quotable sentence
    that states one, when the selection has none (the chain refused the question if there is none at all)."""
    kind = answer_type.expected(question)
    if kind is None or any(answer_type.states(c.text, kind) for c in chosen):
        return chosen
    lead = answer_type.first_stating(candidates, kind, cal.keep_ratio)
    return chosen if lead is None else [lead, *chosen[: max(limit - 1, 0)]]


def _named_first(question: str, candidates: list[Candidate], bonus: float) -> list[Candidate]:
    """For a "which ...?" or "who ...?" factoid, a sentence that names something the question does not gets
    the bonus: the sentence that says who, not the one that repeats the question, should lead."""
    if not bonus or not answer_type.asks_for_name(question) or brief.is_broad(question):
        return candidates
    out = [replace(c, score=c.score + bonus) if answer_type.new_names(c.text, question) else c for c in candidates]
    return sorted(out, key=lambda c: -c.score)
