"""Publication dates: parsing (never guessed), filters and as-of through the service, recency prior."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from rag import QuestionError, RagIndexError, RagService, make_filter, retrieve
from rag.dates import chroma_where, dateline_date, day_number, matches, parse_date, recency_prior, wants_recency
from rag.ingest import load_articles
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025/03/18", date(2025, 3, 18)),
        ("2025-03-18", date(2025, 3, 18)),
        ("2025-3-8", date(2025, 3, 8)),
        ("20250318", date(2025, 3, 18)),
        ("2025-03-18T23:30:00+05:00", date(2025, 3, 18)),  # the date as written, not shifted to UTC
        ("2025-03-18T10:00:00Z", date(2025, 3, 18)),
        ("2025-03-18 10:00", date(2025, 3, 18)),
        ("Tue, 18 Mar 2025 10:00:00 +0000", date(2025, 3, 18)),
        ("18 Mar 2025 10:00:00 GMT", date(2025, 3, 18)),
        ("March 18, 2025", date(2025, 3, 18)),
        ("Tuesday, March 18, 2025", date(2025, 3, 18)),
        ("18 March 2025", date(2025, 3, 18)),
        ("Sept. 4, 2024", date(2024, 9, 4)),
        (date(2025, 3, 18), date(2025, 3, 18)),  # YAML front matter parses dates itself
        # undated and unparseable: never guessed
        (None, None),
        ("", None),
        ("   ", None),
        ("yesterday", None),
        ("last Tuesday", None),
        ("2025", None),
        ("March 2025", None),
        ("03/18/2025", None),  # ambiguous order: not read
        ("18/03/25", None),
        ("2025-02-30", None),
        ("2025-13-01", None),
        ("0001-01-01", None),
        ("Tue, 99 Foo 2025", None),
        (True, None),
        (20250318, date(2025, 3, 18)),
    ],
)
def test_parse_date_table(raw: object, expected: date | None) -> None:
    assert parse_date(raw) == expected


def test_dateline_only_with_a_year() -> None:
    assert dateline_date("KYIV, March 18, 2025 (Reuters) - Talks resumed.") == date(2025, 3, 18)
    assert dateline_date("March 18, 2025 — Talks resumed on Tuesday.") == date(2025, 3, 18)
    assert dateline_date("KYIV, March 18 (Reuters) - Talks resumed.") is None  # no year: not guessed
    assert dateline_date("Talks resumed on March 18, 2025 in Kyiv.") is None  # not a dateline


def test_filter_validation_and_where() -> None:
    f = make_filter("2025-01-01", "2025-03-31", "2025-02-15")
    assert f.upper == date(2025, 2, 15)
    assert chroma_where(f) == {"$and": [{"published_day": {"$gte": 20250101}}, {"published_day": {"$lte": 20250215}}]}
    assert chroma_where(make_filter(until="2025-03-31")) == {
        "$and": [{"published_day": {"$gte": 1}}, {"published_day": {"$lte": 20250331}}]
    }
    assert chroma_where(make_filter()) is None
    with pytest.raises(QuestionError, match="YYYY-MM-DD"):
        make_filter(since="2025/03/18")
    with pytest.raises(QuestionError, match="YYYY-MM-DD"):
        make_filter(as_of="2025-02-30")
    with pytest.raises(QuestionError, match="after until"):
        make_filter(since="2025-04-01", until="2025-03-01")
    with pytest.raises(QuestionError, match="after as-of"):
        make_filter(since="2025-04-01", as_of="2025-03-01")


def test_recency_words_and_prior() -> None:
    assert wants_recency("What is the latest on the ceasefire?")
    assert wants_recency("Who currently leads the talks?")
    assert wants_recency("How many have signed so far?")
    assert not wants_recency("Where were the talks held?")
    assert not wants_recency("What is the knowledge economy?")  # "now" only as a word
    ref = date(2025, 3, 31)
    assert recency_prior(day_number("2025-03-30"), ref) > recency_prior(day_number("2025-01-30"), ref) > 0
    assert recency_prior(0, ref) == 0.0
    assert recency_prior(day_number("2025-04-02"), ref) == 0.0  # after the reference: no bonus


# -- a small dated corpus ------------------------------------------------------------
ARTICLES = {
    "jan.md": "---\ntitle: Istanbul round\npublished: 2025-01-10\n---\n"
    "Negotiators met in Istanbul to discuss the Black Sea grain corridor. The grain corridor talks in Istanbul "
    "ended without agreement on shipping insurance for cargo vessels.\n",
    "mar.md": "---\ntitle: Geneva signing\ndate: 2025/03/20\n---\n"
    "Negotiators signed the Black Sea grain corridor deal in Geneva. The grain corridor agreement signed in "
    "Geneva covers shipping insurance for cargo vessels.\n",
    "may.json": json.dumps(
        {
            "id": "may-1",
            "title": "Odesa ports reopen",
            "published": "Tue, 13 May 2025 09:00:00 +0000",
            "text": "Ports in Odesa reopened under the grain corridor deal. The grain corridor now lets cargo vessels "
            "leave Odesa with shipping insurance.",
        }
    ),
    "undated.txt": "The grain corridor was discussed by negotiators again. Shipping insurance for cargo vessels in "
    "the grain corridor remains a subject of debate.\n",
    "bad-date.md": "---\ntitle: Unreadable date\npublished: sometime in spring\n---\n"
    "Grain corridor insurers met in Varna. The grain corridor insurers in Varna discussed cargo vessels.\n",
}


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> tuple[RagService, dict[str, object]]:
    root = tmp_path_factory.mktemp("dated")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text)
    svc = RagService(make_settings(root / "data"))
    report = svc.ingest([corpus])
    return svc, report.to_dict()


def test_ingest_stores_iso_dates_and_names_undated(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, report = dated
    by_title = {a["title"]: a for a in svc.list_articles()}
    assert by_title["Istanbul round"]["published"] == "2025-01-10"
    assert by_title["Istanbul round"]["published_day"] == 20250110
    assert by_title["Geneva signing"]["published"] == "2025-03-20"  # front matter `date:`
    assert by_title["Odesa ports reopen"]["published"] == "2025-05-13"  # RFC 2822
    assert by_title["Unreadable date"]["published"] == "" and by_title["Unreadable date"]["published_day"] == 0
    undated = {Path(str(u["path"])).name: u["reason"] for u in report["undated"]}  # type: ignore[index, union-attr]
    assert set(undated) == {"undated.txt", "bad-date.md"}
    assert "sometime in spring" in undated["bad-date.md"]
    assert "no publication date" in undated["undated.txt"]


def _titles(ans: object) -> set[str]:
    return {p.title for p in ans.contexts}  # type: ignore[attr-defined]


def test_filters_through_ask(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, _ = dated
    q = "Where did negotiators meet about the grain corridor?"
    everything = svc.ask(q, k=10)
    assert {"Istanbul round", "Geneva signing", "Odesa ports reopen"} <= _titles(everything)
    assert all(c.published is None or len(c.published) == 10 for c in everything.citations)

    since = svc.ask(q, k=10, since="2025-03-01")
    assert _titles(since) <= {"Geneva signing", "Odesa ports reopen"}, "since keeps later articles only"
    assert "Geneva signing" in _titles(since)

    window = svc.ask(q, k=10, since="2025-02-01", until="2025-04-30")
    assert _titles(window) == {"Geneva signing"}
    assert all(c.published == "2025-03-20" for c in window.citations)

    for method in ("bm25", "dense"):  # each retriever applies the same rule
        got = svc.ask(q, k=10, method=method, until=date(2025, 3, 31))  # type: ignore[arg-type]
        assert _titles(got) <= {"Istanbul round", "Geneva signing"}, method
        assert _titles(got)


def test_as_of_hides_later_articles(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, _ = dated
    q = "Where was the grain corridor deal signed?"
    assert "Geneva signing" in _titles(svc.ask(q, k=10))
    before = svc.ask(q, k=10, as_of="2025-02-01")
    assert _titles(before) == {"Istanbul round"}
    assert all(c.published == "2025-01-10" for c in before.citations)


def test_filter_that_leaves_nothing_says_so(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, _ = dated
    ans = svc.ask("Where was the grain corridor deal signed?", since="2024-01-01", until="2024-12-31")
    assert ans.refused and not ans.citations and not ans.contexts
    assert "Only 0 of the 5 articles are published 2024-01-01 to 2024-12-31" in ans.answer
    assert "2 undated article(s) are left out" in ans.answer


def test_bad_filters_raise(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, _ = dated
    with pytest.raises(QuestionError, match="YYYY-MM-DD"):
        svc.ask("grain corridor", since="March 2025")
    with pytest.raises(QuestionError, match="after until"):
        svc.ask("grain corridor", since="2025-05-01", until="2025-01-01")


def test_recency_prior_prefers_newer_when_asked(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, _ = dated
    plain = svc.retrieve("grain corridor shipping insurance cargo vessels", 5)
    latest = svc.retrieve("grain corridor shipping insurance cargo vessels", 5, recency=date(2025, 6, 1))
    rank = {p.title: i for i, p in enumerate(latest)}
    assert rank["Odesa ports reopen"] < rank["Geneva signing"] < rank["Istanbul round"]
    assert [p.title for p in plain] != [p.title for p in latest], "the prior changed the order"
    # as of March, May's article is not there and March's is the newest
    asof = svc.retrieve(
        "grain corridor shipping insurance cargo vessels", 5, dates=make_filter(as_of="2025-03-31"),
        recency=date(2025, 3, 31),
    )
    assert asof[0].title == "Geneva signing" and "Odesa ports reopen" not in {p.title for p in asof}


@pytest.mark.parametrize("looks", [(400,), (1,), (1, 400)])
def test_dense_search_within_a_filter_equals_chromas_filtered_search(
    dated: tuple[RagService, dict[str, object]], monkeypatch: pytest.MonkeyPatch, looks: tuple[int, ...]
) -> None:
    """The dense search of a date-filtered question looks at the nearest chunks unfiltered first and screens them
    by day (fast when the filter keeps most of the index); it must give what Chroma's filtered search gives,
    also when a look holds too few chunks in the filter (a wider look follows; after the last, Chroma's search)."""
    svc, _ = dated
    monkeypatch.setattr(retrieve, "FIRST_LOOKS", looks)
    monkeypatch.setattr(retrieve, "OVERFETCH", 1)
    qvec = np.asarray(svc.embedder.embed_query("grain corridor shipping insurance cargo vessels"))
    filters = [make_filter(as_of="2025-03-31"), make_filter(since="2025-03-01"),
               make_filter(since="2025-01-01", until="2025-01-31"), make_filter(since="2026-01-01")]
    for f in filters:
        for n in (1, 3, 8):
            got = svc._retriever._dense(qvec, n, f)
            want = svc._store.dense_search(qvec, n, where=chroma_where(f))
            assert [p.chunk_id for p in got] == [p.chunk_id for p in want], (f, n)
            assert [p.dense_score for p in got] == pytest.approx([p.dense_score for p in want]), (f, n)
            assert all(matches(f, int(p.metadata["published_day"])) for p in got)


def test_index_without_dates_asks_for_reingest(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "jan.md").write_text(ARTICLES["jan.md"])
    svc = RagService(make_settings(tmp_path / "data"))
    svc.ingest([corpus])
    # what an older version stored: the raw date string and no published_day
    aid = svc.list_articles()[0]["article_id"]
    reg = svc._store.articles.get(ids=[aid], include=["metadatas"])
    old = {k: v for k, v in reg["metadatas"][0].items() if k != "published_day"}
    svc._store.articles.delete(ids=[aid])
    old["published"] = "2025/01/10"
    svc._store.articles.add(ids=[aid], embeddings=[[1.0]], documents=["x"], metadatas=[old])
    with pytest.raises(RagIndexError, match=r"older version.*rag ingest"):
        svc.ask("Where did negotiators meet?", since="2025-01-01")
    assert not svc.ask("Where did negotiators meet?").refused  # no filter: still answers
    report = svc.ingest([corpus])
    assert report.dates_added == 1 and report.added == 0
    ans = svc.ask("Where did negotiators meet?", since="2025-01-01")
    assert not ans.refused and ans.citations[0].published == "2025-01-10"


def test_load_articles_html_metadata_date(tmp_path: Path) -> None:
    html = tmp_path / "a.html"
    body = " ".join(["Negotiators met in Istanbul to discuss the grain corridor and shipping insurance."] * 5)
    html.write_text(
        '<html><head><title>Istanbul round</title><meta property="article:published_time" '
        f'content="2025-01-10T08:00:00Z"></head><body><article><p>{body}</p><p>{body}</p></article></body></html>'
    )
    (art,) = load_articles(html, [])
    assert art.published == "2025-01-10"


def test_latest_question_says_the_day_it_relies_on(dated: tuple[RagService, dict[str, object]]) -> None:
    svc, _ = dated
    latest = svc.ask("What is the latest on the grain corridor deal for cargo vessels?", as_of="2025-04-30")
    assert not latest.refused
    assert latest.latest_source == max(c.published for c in latest.citations if c.published)
    assert latest.latest_source is not None and latest.latest_source <= "2025-04-30"
    assert latest.to_dict()["latest_source"] == latest.latest_source
    plain = svc.ask("Where was the grain corridor deal signed?")
    assert plain.latest_source is None, "only questions about the latest state carry it"
