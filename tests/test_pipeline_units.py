"""Unit tests of the pipeline's small rules: RRF, MMR, the IDF prior, follow-up condensing, settings precedence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rag import RagService, Settings, Turn
from rag.bm25 import IDF_PRIOR_CHUNKS, IDF_PRIOR_DF
from rag.condense import condense, is_followup
from rag.ranking import RRF_K, Ranking, feedback_terms, fuse, mmr, rrf_score, title_match
from rag.text import terms
from rag.types import Passage
from tests.conftest import make_settings


# -- reciprocal rank fusion --------------------------------------------------------------------
def test_rrf_adds_one_over_k_plus_rank_per_retriever() -> None:
    assert rrf_score((0, 0)) == pytest.approx(2 / (RRF_K + 1))
    assert rrf_score((0, None)) == pytest.approx(1 / (RRF_K + 1))
    assert rrf_score((None, None)) == 0.0
    # found by both retrievers at middling ranks beats first place in one of them
    assert rrf_score((5, 5)) > rrf_score((0, None))
    assert rrf_score((2, 9), k=10) == pytest.approx(1 / 13 + 1 / 20)


def test_rrf_weights_scale_each_retrievers_term() -> None:
    assert rrf_score((0, 3), k=10, weights=(2.0, 0.5)) == pytest.approx(2 / 11 + 0.5 / 14)
    assert rrf_score((None, 3), k=10, weights=(2.0, 0.0)) == 0.0


def _ranked(cid: str, article: str, dense: int | None, bm25: int | None, svecs: list[np.ndarray]) -> Passage:
    p = Passage(cid, article, cid, 0, 1, [], {})
    p.dense_rank, p.bm25_rank = dense, bm25
    p.sentence_vectors = np.stack(svecs) if svecs else None
    return p


def test_sentence_maxsim_list_lifts_the_passage_holding_the_best_sentence() -> None:
    q = _unit(1, 0, 0)
    # "b" is ranked below "a" by both retrievers but holds the one sentence that matches the question
    a = _ranked("a", "A", 0, 0, [_unit(0, 1, 0), _unit(0.3, 1, 0)])
    b = _ranked("b", "B", 1, 1, [_unit(0, 0, 1), _unit(1, 0.05, 0)])
    fuse([a, b], q, Ranking(w_sentence=0.0))
    assert a.score > b.score, "without the sentence list the retrievers' order stands"
    fuse([a, b], q, Ranking(w_sentence=3.0))
    assert b.score > a.score


def test_article_aggregation_adds_the_same_articles_other_candidates() -> None:
    q = _unit(1, 0, 0)
    lone = _ranked("lone", "X", 0, None, [])
    first = _ranked("y1", "Y", 1, None, [])
    second = _ranked("y2", "Y", 2, None, [])
    fuse([lone, first, second], q, Ranking(w_sentence=0.0))
    assert lone.score > first.score
    fuse([lone, first, second], q, Ranking(w_sentence=0.0, w_article=0.5))
    assert first.score == pytest.approx(1 / (RRF_K + 2) + 0.5 / (RRF_K + 3))
    assert first.score > lone.score, "an article with several matching chunks outranks a lone hit"


def test_title_list_lifts_the_passage_whose_headline_names_the_question_s_subject() -> None:
    idf = {"joann": 6.0, "store": 1.0, "close": 2.0}.get
    question = terms("Why is Joann closing its stores?")
    assert title_match(question, "Joann to close all stores", lambda t: idf(t, 1.0)) == pytest.approx(1.0)
    assert title_match(question, "Retail news roundup", lambda t: idf(t, 1.0)) == 0.0
    q = _unit(1, 0, 0)
    a = _ranked("a", "A", 0, 0, [])
    b = _ranked("b", "B", 1, 1, [])
    titles = {"A": "Retail news roundup", "B": "Joann to close all stores"}

    def title_of(p: Passage) -> float:
        return title_match(question, titles[p.article_id], lambda t: idf(t, 1.0))

    fuse([a, b], q, Ranking(w_sentence=0.0), title_of)
    assert a.score > b.score, "off by default: the retrievers' order stands"
    fuse([a, b], q, Ranking(w_sentence=0.0, w_title=1.0), title_of)
    assert b.score > a.score


def test_feedback_terms_are_new_frequent_and_rare_terms_of_the_top_passages() -> None:
    texts = ["The grain corridor reopened; grain ships sailed from Odesa.", "Odesa port grain exports rose."]
    idf = {"odesa": 5.0, "grain": 4.0}
    got = feedback_terms("grain corridor", texts, lambda t: idf.get(t, 0.5), 2)
    assert got[0] == "odesa" and len(got) == 2, got  # in both passages and rare
    assert "grain" not in got and "corridor" not in got, "the question's own terms are not feedback"


# -- maximal marginal relevance ------------------------------------------------------------------
def _passage(cid: str, score: float) -> Passage:
    p = Passage(cid, cid, cid, 0, 1, [], {})
    p.score = score
    return p


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_mmr_prefers_a_different_passage_over_a_near_copy() -> None:
    pool = [_passage("a", 1.0), _passage("a-copy", 0.99), _passage("b", 0.9), _passage("c", 0.0)]
    vectors = {"a": _unit(1, 0, 0), "a-copy": _unit(1, 0.05, 0), "b": _unit(0, 1, 0), "c": _unit(0, 0, 1)}
    assert [p.chunk_id for p in mmr(pool, vectors, k=2, lam=0.85)] == ["a", "b"]
    # with all weight on relevance the near copy (below the duplicate cut) comes second
    assert [p.chunk_id for p in mmr(pool, vectors, k=2, lam=1.0, duplicate_cosine=1.01)] == ["a", "a-copy"]


def test_mmr_never_returns_two_duplicates_even_when_short_of_k() -> None:
    pool = [_passage("a", 1.0), _passage("a2", 0.9)]
    same = _unit(1, 1, 0)
    assert [p.chunk_id for p in mmr(pool, {"a": same, "a2": same}, k=2)] == ["a"]
    assert mmr([], {}, k=3) == []


# -- the IDF prior ---------------------------------------------------------------------------------
def test_idf_prior_keeps_a_one_article_corpus_sane(corpus_service: RagService) -> None:
    bm25 = corpus_service._bm25
    n = bm25.size()
    assert 0 < n < 20  # the seed article's few chunks

    def expected(df: int) -> float:
        total, d = n + IDF_PRIOR_CHUNKS, df + IDF_PRIOR_CHUNKS * IDF_PRIOR_DF
        return math.log(1 + (total - d + 0.5) / (d + 0.5))

    absent, common = bm25.idf("zzzunseenterm"), bm25.idf("russia")
    assert absent == pytest.approx(expected(0))
    assert common < absent  # a word in the corpus weighs less than one that is not
    # without the prior a term in every chunk would weigh log(1 + 0.5 / (n + 0.5)), close to nothing;
    # with it, it keeps most of an unseen term's weight
    assert common > 0.8 * absent


# -- follow-ups ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "followup"),
    [
        ("And what about Donetsk?", True),
        ("Why?", True),
        ("What did they say about it?", True),
        ("What financial risks could Moscow face in 2026?", False),
        ("Where did the latest round of negotiations take place?", False),
    ],
)
def test_is_followup(question: str, followup: bool) -> None:
    assert is_followup(question) is followup


def test_condense_borrows_the_previous_topic_only_for_followups() -> None:
    history = [Turn("What does Russia want from the peace talks?", "…", "What does Russia want from the peace talks?")]
    out = condense("And what about Donetsk?", history)
    assert out.startswith("And what about Donetsk?") and "Russia" in out and "Donetsk" not in out[24:]
    standalone = "What financial risks could Moscow face in 2026?"
    assert condense(standalone, history) == standalone
    assert condense("And what about Donetsk?", []) == "And what about Donetsk?"


# -- settings precedence: argument > environment > .env > default --------------------------------
def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RAG_TOP_K=7\nRAG_LLM_MODEL=from-dotenv\nRAG_CANDIDATES=40\n")
    monkeypatch.setenv("RAG_TOP_K", "9")
    monkeypatch.setenv("RAG_LLM_MODEL", "from-env")
    s = Settings(_env_file=env_file, llm_model="from-argument")  # type: ignore[call-arg]
    assert s.llm_model == "from-argument"  # argument beats environment
    assert s.top_k == 9  # environment beats .env
    assert s.candidates == 40  # .env beats the default
    assert s.chunk_size == 800  # the default
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    assert Settings(_env_file=None).llm_configured  # type: ignore[call-arg]  # the OpenAI alias counts


def test_settings_reject_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="top_k"):
        Settings(_env_file=None, top_k=0)  # type: ignore[call-arg]


def test_asking_for_the_mode_builds_nothing(tmp_path: Path) -> None:
    svc = RagService(make_settings(tmp_path / "data"))
    assert svc.resolve_mode(None) == "extractive"
    assert not svc.embedder_loaded


def test_composition_root_takes_a_callers_chroma_client(tmp_path: Path, corpus_service: RagService) -> None:
    import chromadb

    client = chromadb.EphemeralClient()
    settings = make_settings(tmp_path / "data", collection="given-client")
    svc = RagService(settings, embedder=corpus_service.embedder, chroma_client=client, ranking=Ranking(candidates=7))
    report = svc.ingest()
    assert report.added == 1 and svc.stats()["chunks"] == report.chunks_added
    names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
    assert "given-client" in names, "the chunks went to the caller's client"
    assert not (settings.data_dir / "chroma").exists(), "nothing was written to the embedded index path"
    # the caller owns that client's safety: no data-dir lock, so a second service on the same dir opens
    other = RagService(settings, embedder=corpus_service.embedder, chroma_client=client)
    assert other.stats()["articles"] == 1
    mine, seed = svc.retrieve("What does Russia want?", 3), corpus_service.retrieve("What does Russia want?", 3)
    assert [p.article_id for p in mine] == [p.article_id for p in seed]


@pytest.mark.parametrize(
    ("question", "frame"),
    [
        ("What does Russia want?", {"want"}),
        ("What is the latest news on the ceasefire?", {"latest", "news"}),
        ("What happened to News Corp's bid?", {"happen"}),  # "News Corp" is a name
        ("What financial risks could Russia face?", set()),  # answers do say "risks": matched as a word
        ("Who won the Stanley Cup?", set()),  # not a broad question
    ],
)
def test_a_broad_questions_frame_words_are_not_matched_as_words(question: str, frame: set[str]) -> None:
    from rag.gate import frame_terms, term_weights

    assert frame_terms(question) == frame
    weights = term_weights(question, question, lambda t: 1.0)
    assert not frame & set(weights), "frame words carry no word-match weight"
    assert weights, "the topic words do"
    assert term_weights("What happened?", "What happened?", lambda t: 1.0) == {"happen": 1.0}  # nothing else left


@pytest.mark.parametrize(
    ("question", "broad"),
    [
        ("What does Russia want?", True),
        ("What did Cory Booker do before his speech?", True),  # "do" as the verb
        ("How does Europe's view of the peace talks differ from Washington's?", True),  # two sides
        ("What is changing in the baggage policy?", True),
        ("How did one European intelligence chief describe the talks in Geneva?", False),  # "did" as an auxiliary
        ("How much money did the European Union pledge?", False),
        ("What kind of state does Moscow want to turn Ukraine into?", False),  # one attribute asked for
    ],
)
def test_broad_questions_are_told_from_factoids(question: str, broad: bool) -> None:
    from rag.brief import is_broad

    assert is_broad(question) is broad


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("What does Russia want?", "What does Russia ?"),
        ("What is the latest news on the ceasefire?", "What is the   on the ceasefire?"),
        ("What happened to News Corp's bid?", "What  to News Corp's bid?"),  # "News Corp" is a name
        ("Who won the Stanley Cup?", "Who won the Stanley Cup?"),  # not a broad question
        ("What happened?", "What happened?"),  # nothing but the frame: searched as asked
    ],
)
def test_a_broad_questions_lexical_search_leaves_out_its_frame_words(question: str, topic: str) -> None:
    from rag.gate import topic_query

    assert topic_query(question) == topic


def test_bm25_searches_a_broad_questions_topic_not_its_frame_word(tmp_path: Path) -> None:
    """A page that repeats "want" must not outrank the article about what Russia seeks (issue 15: sentences
    were picked for sharing the word "want"): the chain's BM25 search leaves the frame word out."""
    from tests.conftest import make_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "wants.txt").write_text(
        "Readers want puzzles. Gardeners want rain, cooks want salt and everyone wants a holiday. "
        "He says whatever he wants. A film about Russia opens this week.\n", encoding="utf-8")
    (docs / "goals.txt").write_text(
        "Officials said Russia is seeking sanctions relief. Russia also seeks a neutral buffer state, and "
        "Russia insists on keeping the land it holds.\n", encoding="utf-8")
    svc = RagService(make_settings(tmp_path / "data"))
    svc.ingest([docs])
    raw = svc.retrieve("What does Russia want?", 1, method="bm25")
    assert "sanctions relief" not in raw[0].text, "the setup: searched as asked, the word 'want' wins"
    answer = svc.ask("What does Russia want?", k=1, mode="extractive", method="bm25")
    assert "sanctions relief" in answer.contexts[0].text
