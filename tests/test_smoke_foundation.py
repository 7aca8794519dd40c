"""End-to-end through real components: ingest the seed article, ask, check citations."""

from __future__ import annotations

from rag import RagService


def test_answer_cites_verbatim_passages(corpus_service: RagService) -> None:
    a = corpus_service.ask("What does Russia want?")
    assert not a.refused
    assert a.citations
    for c in a.citations:
        art = corpus_service.get_article(c.article_id)
        assert art is not None
        assert art.text[c.start : c.end] == c.quote
