"""Incremental BM25: small ingests and deletes go to a delta segment, large ones rebuild (merge)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rag.bm25 as bm25
from rag import RagService
from rag.bm25delta import DELTA_FILE
from tests.conftest import make_settings

BASE = {
    f"a{i}.md": f"---\ntitle: Article {i}\npublished: 2025-01-{10 + i}\n---\n"
    f"Negotiators met in city number {i} to discuss the grain corridor. Talk {i} covered shipping insurance "
    f"and the cargo vessels that cross the Black Sea every week.\n"
    for i in range(6)
}
NEW = (
    "---\ntitle: Zanzibar spice auction\npublished: 2025-03-01\n---\n"
    "Traders at the Zanzibar spice auction bid for cloves and nutmeg. The Zanzibar cloves sold at record prices.\n"
)


def _meta_revision(svc: RagService) -> str:
    import json

    return str(json.loads((svc._bm25.directory / "meta.json").read_text())["revision"])


@pytest.fixture
def svc(tmp_path: Path) -> RagService:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in BASE.items():
        (corpus / name).write_text(text)
    s = RagService(make_settings(tmp_path / "data"))
    s.ingest([corpus])
    return s


def _top_titles(svc: RagService, query: str, n: int = 3) -> list[str]:
    ids = [cid for cid, _ in svc._bm25.search(query, n)]
    return [p.title for p in svc._store.get_passages(ids)]


def test_small_ingest_goes_to_the_delta_and_is_searchable(svc: RagService, tmp_path: Path) -> None:
    main_before = _meta_revision(svc)
    assert not (svc._bm25.directory / DELTA_FILE).exists()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "zanzibar.md").write_text(NEW)
    svc.ingest([tmp_path / "new"])
    assert (svc._bm25.directory / DELTA_FILE).exists(), "a small ingest writes a delta"
    assert _meta_revision(svc) == main_before, "the main segment was not rebuilt"
    assert _top_titles(svc, "Zanzibar cloves auction")[0] == "Zanzibar spice auction"
    assert svc._bm25.size() == svc.stats()["chunks"]
    # another process (a serving app) loads main + delta without rebuilding, and finds the new article
    other = RagService(make_settings(svc.settings.data_dir))
    assert other._bm25.loads_current()
    assert _top_titles(other, "Zanzibar cloves auction")[0] == "Zanzibar spice auction"
    # the delta's scores are on the main segment's scale: a full rebuild ranks the same way
    delta_rank = _top_titles(svc, "grain corridor Zanzibar cloves", 7)
    svc._bm25.rebuild()
    assert not (svc._bm25.directory / DELTA_FILE).exists(), "a full build merges the delta"
    assert _top_titles(svc, "grain corridor Zanzibar cloves", 7)[0] == delta_rank[0]


def test_delete_is_masked_then_merged(svc: RagService) -> None:
    aid = next(a["article_id"] for a in svc.list_articles() if a["title"] == "Article 3")
    assert "Article 3" in _top_titles(svc, "city number 3 talk", 6)
    svc.delete_article(aid)
    assert (svc._bm25.directory / DELTA_FILE).exists()
    assert "Article 3" not in _top_titles(svc, "city number 3 talk", 6), "a deleted chunk is masked"
    assert svc._bm25.size() == svc.stats()["chunks"]


def test_updated_article_replaces_its_old_chunks(svc: RagService, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "a2.md").write_text(BASE["a2.md"].replace("grain corridor", "Zanzibar cloves"))
    svc.ingest([corpus])
    assert (svc._bm25.directory / DELTA_FILE).exists()
    assert _top_titles(svc, "Zanzibar cloves")[0] == "Article 2"
    titles = _top_titles(svc, "grain corridor", 6)
    assert "Article 2" not in titles and len(titles) == 5, "the old version's chunks are masked"


def test_large_change_rebuilds_and_stale_delta_is_never_served(
    svc: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bm25, "DELTA_MERGE_MIN", 0)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "zanzibar.md").write_text(NEW)
    before = _meta_revision(svc)
    svc.ingest([tmp_path / "new"])
    assert _meta_revision(svc) != before and not (svc._bm25.directory / DELTA_FILE).exists(), "merged"
    monkeypatch.setattr(bm25, "DELTA_MERGE_MIN", 2000)
    aid = next(a["article_id"] for a in svc.list_articles() if a["title"] == "Zanzibar spice auction")
    svc.delete_article(aid)
    assert (svc._bm25.directory / DELTA_FILE).exists()
    # the store changes after the delta was written (e.g. a writer killed before its BM25 update)
    svc._store.bump_revision()
    other = RagService(make_settings(svc.settings.data_dir))
    assert not other._bm25.loads_current(), "a delta for another revision is not used"
    assert "Zanzibar spice auction" not in _top_titles(other, "Zanzibar cloves auction")  # rebuilt, still right
    assert other._bm25.size() == other._store.count()


LONG = (
    "---\ntitle: Quokka census on Rottnest\npublished: 2025-04-01\n---\n"
    + "Rangers walked the island's western trails at dawn. " * 40
    + "The final tally was announced at the ferry terminal.\n"
)


def _chunk_hits(svc: RagService, query: str) -> set[str]:
    return {cid for cid, _ in svc._bm25.search(query, 50)}


def _quokka_chunks(svc: RagService) -> set[str]:
    return {p.chunk_id for p in svc._store.get_passages([c for c, _ in svc._bm25.search("quokka census", 100)])}


def test_every_chunk_is_indexed_after_its_article_title(svc: RagService, tmp_path: Path) -> None:
    """With the title header the title's words find every chunk of the article, though the body never repeats
    them (delta and rebuild paths alike); the passage text stays the body."""
    svc.close()
    svc = RagService(make_settings(svc.settings.data_dir, bm25_title_header=True))
    svc._bm25.rebuild()  # the fixture's index was built without the header
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "quokka.md").write_text(LONG)
    svc.ingest([tmp_path / "long"])  # small: the delta path
    assert (svc._bm25.directory / DELTA_FILE).exists(), "the delta path indexed it"
    found = svc._store.get_passages(list(_quokka_chunks(svc)))
    assert len(found) >= 2, "the article spans several chunks, each found by its title"
    assert {p.title for p in found} == {"Quokka census on Rottnest"}
    assert all("uokka" not in p.text and "census" not in p.text for p in found), "the header is not in the text"
    delta_hits = _quokka_chunks(svc)
    svc._bm25.rebuild()  # the full rebuild indexes the same text
    assert _quokka_chunks(svc) == delta_hits


def test_switching_the_header_rebuilds_bm25_from_the_store(svc: RagService, tmp_path: Path) -> None:
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "quokka.md").write_text(LONG)
    svc.ingest([tmp_path / "long"])
    assert _quokka_chunks(svc) == set(), "off by default: the body text alone"
    svc.close()
    svc = RagService(make_settings(svc.settings.data_dir, bm25_title_header=True))
    assert not svc._bm25.loads_current(), "an index built with the other chunk text is not taken as current"
    assert len(_quokka_chunks(svc)) >= 2
    svc.close()
    off = RagService(make_settings(svc.settings.data_dir, bm25_title_header=False))
    assert not off._bm25.loads_current(), "an index built with the other chunk text is not taken as current"
    assert _quokka_chunks(off) == set(), "rebuilt from the body text alone"
    assert off._bm25.size() == svc.stats()["chunks"]


def _ranked(svc: RagService, query: str) -> list[tuple[str, float]]:
    return [(cid, round(score, 5)) for cid, score in svc._bm25.search(query, 20)]


def _texts_read(svc: RagService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The chunk ids whose text BM25 reads back from the store one by one (not by a full scan), as they are read."""
    read: list[str] = []
    documents_of = svc._store.documents_of
    monkeypatch.setattr(svc._store, "documents_of", lambda ids: read.extend(ids) or documents_of(ids))
    return read


QUERIES = ("grain corridor", "Zanzibar cloves auction", "city number 4 talk", "shipping insurance Black Sea",
           "quokka census", "cargo vessels record prices")


def test_a_merge_reads_only_the_changed_chunks_and_matches_a_full_build(
    svc: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "zanzibar.md").write_text(NEW)
    svc.ingest([tmp_path / "new"])  # deltas: an added article, an updated one, a deleted one
    (corpus / "a2.md").write_text(BASE["a2.md"].replace("grain corridor", "Zanzibar cloves"))
    svc.ingest([corpus])
    svc.delete_article(next(a["article_id"] for a in svc.list_articles() if a["title"] == "Article 3"))
    assert (svc._bm25.directory / DELTA_FILE).exists()
    changed = {p.chunk_id for p in svc._store.get_passages(
        [c for c, _ in svc._bm25.search("Zanzibar cloves", 50)])}  # the added and the updated articles' chunks
    read = _texts_read(svc, monkeypatch)
    monkeypatch.setattr(bm25, "DELTA_MERGE_MIN", 0)
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "quokka.md").write_text(LONG)
    svc.ingest([tmp_path / "long"])  # merges: a full build
    assert not (svc._bm25.directory / DELTA_FILE).exists(), "merged"
    quokka = {p.chunk_id for p in svc._store.get_passages([c for c, _ in svc._bm25.search("rangers trails", 50)])}
    assert quokka and set(read) == changed | quokka, "only chunks added since the last full build are read"
    merged = {q: _ranked(svc, q) for q in QUERIES}
    sizes = (svc._bm25.size(), svc._bm25.idf("zanzibar"), svc._bm25.idf("grain"))
    svc._bm25.rebuild()  # from every chunk's text
    assert {q: _ranked(svc, q) for q in QUERIES} == merged
    assert (svc._bm25.size(), svc._bm25.idf("zanzibar"), svc._bm25.idf("grain")) == sizes
    assert svc._bm25.size() == svc.stats()["chunks"]


def test_saved_counts_of_another_state_or_damaged_are_not_used(
    svc: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rag.bm25build import COUNTS_FILE

    counts = svc._bm25.directory / COUNTS_FILE
    assert counts.is_file(), "a full build saves its rows"
    counts.write_bytes(counts.read_bytes()[:200])  # truncated
    read = _texts_read(svc, monkeypatch)
    monkeypatch.setattr(bm25, "DELTA_MERGE_MIN", 0)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "zanzibar.md").write_text(NEW)
    with caplog.at_level("WARNING"):
        svc.ingest([tmp_path / "new"])
    assert "unreadable" in caplog.text and not read, "a damaged file is said, and every text is read instead"
    assert _top_titles(svc, "Zanzibar cloves auction")[0] == "Zanzibar spice auction"
    svc._store.bump_revision()  # the store moved on without the index: the saved rows describe another state
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "quokka.md").write_text(LONG)
    svc.ingest([tmp_path / "more"])
    assert not read and svc._bm25.size() == svc.stats()["chunks"]
    assert "Quokka census on Rottnest" not in _top_titles(svc, "Zanzibar cloves auction")


def test_another_instance_reads_only_the_chunks_added_since_its_cache(
    svc: RagService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance with its own BM25 cache (another RAG_DATA_DIR on a shared Chroma) does not see the ingest's
    delta: when the revision moves it rebuilds, keeping the saved rows of chunks still stored (by id)."""
    other = bm25.BM25Index(tmp_path / "other-instance", svc._store, recheck_seconds=0)
    other.rebuild()
    corpus = tmp_path / "corpus"
    (corpus / "a2.md").write_text(BASE["a2.md"].replace("grain corridor", "Zanzibar cloves"))  # updated
    (corpus / "a3.md").unlink()
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "quokka.md").write_text(LONG)
    svc.ingest([corpus, tmp_path / "long"], sync=True)  # an update, a removal and a new article
    read = _texts_read(svc, monkeypatch)
    found = [cid for cid, _ in other.search("Zanzibar cloves rangers trails", 50)]
    new = {p.chunk_id for p in svc._store.get_passages(found) if p.title in ("Article 2", "Quokka census on Rottnest")}
    assert new and set(read) == new, "only the updated and the new articles' chunks are read"
    assert other.size() == svc.stats()["chunks"]
    by_id = {q: [(c, round(s, 5)) for c, s in other.search(q, 20)] for q in QUERIES}
    other.rebuild()  # from every chunk's text
    assert {q: [(c, round(s, 5)) for c, s in other.search(q, 20)] for q in QUERIES} == by_id
    # re-chunking (`rag ingest --rebuild`) makes a new collection: the saved rows are not used
    read.clear()
    svc._store.reset_chunks()
    assert other._reusable_by_id() is None
