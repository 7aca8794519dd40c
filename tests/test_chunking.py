"""Chunking is pure: offsets locate every chunk and sentence in the article text."""

from __future__ import annotations

from rag.chunking import Chunker, split_sentences
from rag.ingest import make_article
from tests.conftest import CORPUS

TEXT = (CORPUS / "000_5954ce3cc012173a.txt").read_text(encoding="utf-8")


def test_chunks_carry_exact_offsets_and_stable_ids() -> None:
    art = make_article("seed", TEXT, {}, "seed.txt")
    chunks = Chunker(800, 120).split(art)
    assert len(chunks) > 3
    for c in chunks:
        assert art.text[c.start : c.end] == c.text
        assert len(c.text) <= 800
        for s, e in c.sentences:
            assert c.start <= s < e <= c.end
    assert [c.chunk_id for c in chunks] == [c.chunk_id for c in Chunker(800, 120).split(art)]
    covered = "".join(art.text[c.start : c.end] for c in chunks)
    assert "Russia neither wants nor needs a quick peace" in covered


def test_sentences_respect_initials_abbreviations_and_quotes() -> None:
    text = (
        "President Donald J. Trump spoke in the U.S. Capitol. "
        "“Russia is not seeking a peace agreement. They are seeking their goals,” one official said. Next one."
    )
    sents = [text[s:e] for s, e in split_sentences(text)]
    assert sents[0] == "President Donald J. Trump spoke in the U.S. Capitol."
    assert sents[1].startswith("“Russia") and sents[1].endswith("one official said.")
    assert sents[2] == "Next one."


def test_changed_text_changes_chunk_ids() -> None:
    a = make_article("seed", TEXT, {}, "seed.txt")
    b = make_article("seed", TEXT + "\nMore.", {}, "seed.txt")
    assert Chunker().split(a)[0].chunk_id != Chunker().split(b)[0].chunk_id


def test_the_model_reads_each_chunk_after_its_title_when_asked() -> None:
    art = make_article("seed", TEXT, {"title": "Intelligence chiefs on the war"}, "seed.txt")
    plain, headed = Chunker(800, 120), Chunker(800, 120, title_header=True)
    chunks = plain.split(art)
    assert [c.chunk_id for c in headed.split(art)] == [c.chunk_id for c in chunks], "the chunks themselves are the same"
    texts, spans = plain.model_inputs([(art, chunks)])
    assert texts == [c.text for c in chunks]
    texts, spans = headed.model_inputs([(art, chunks)])
    for text, chunk_spans, c in zip(texts, spans, chunks, strict=True):
        assert text == "Intelligence chiefs on the war\n" + c.text
        # each sentence span points at the same sentence inside what the model reads
        assert [text[s:e] for s, e in chunk_spans] == [art.text[s:e] for s, e in c.sentences]
