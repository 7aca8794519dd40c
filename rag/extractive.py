"""The offline answerer: a news brief of verbatim sentences from the prepared passages, each with its [n]."""

from __future__ import annotations

from collections.abc import Iterator

from rag import brief
from rag.calibration import Calibration
from rag.dates import wants_recency
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
            chosen = brief.select(candidates, self.max_sentences, self.calibration, brief.is_broad(question))
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
