"""Ingest through real files, real embeddings and a real Chroma: idempotence, change, removal, bad files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from rag import CorpusError, RagService
from tests.conftest import CORPUS

SEED = CORPUS / "000_5954ce3cc012173a.txt"


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    d = tmp_path / "articles"
    d.mkdir()
    shutil.copy(SEED, d / SEED.name)
    return d


def test_reingest_unchanged_embeds_nothing(service: RagService, corpus_copy: Path) -> None:
    first = service.ingest([corpus_copy])
    assert (first.added, first.unchanged) == (1, 0)
    assert first.chunks_added == service.stats()["chunks"] > 1
    second = service.ingest([corpus_copy])
    assert (second.added, second.updated, second.unchanged, second.chunks_added) == (0, 0, 1, 0)
    assert second.embed_seconds == 0.0
    assert service.stats()["chunks"] == first.chunks_added


def test_changed_article_replaces_its_chunks(service: RagService, corpus_copy: Path) -> None:
    service.ingest([corpus_copy])
    old_ids = set(service._store.chunks.get(include=[])["ids"])
    f = corpus_copy / SEED.name
    f.write_text(f.read_text(encoding="utf-8") + "\nA new closing paragraph about Odesa harbour repairs.\n", "utf-8")
    report = service.ingest([corpus_copy])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
    new_ids = set(service._store.chunks.get(include=[])["ids"])
    assert not old_ids & new_ids, "stale chunks of the old version remain"
    assert service.stats()["chunks"] == report.chunks_added
    answer = service.ask("What is being repaired in Odesa?")
    assert "Odesa harbour" in answer.answer


def test_sync_removes_articles_whose_files_are_gone(service: RagService, corpus_copy: Path) -> None:
    other = "---\ntitle: Grain exports\n---\nUkraine shipped grain from Odesa.\n"
    (corpus_copy / "other.md").write_text(other, "utf-8")
    service.ingest([corpus_copy])
    assert service.stats()["articles"] == 2
    (corpus_copy / "other.md").unlink()
    kept = service.ingest([corpus_copy])
    assert kept.removed == 0 and service.stats()["articles"] == 2, "without --sync nothing is removed"
    synced = service.ingest([corpus_copy], sync=True)
    assert synced.removed == 1 and synced.chunks_removed >= 1
    assert [a["title"] for a in service.list_articles()] != ["Grain exports"]
    assert service.stats()["articles"] == 1
    assert all("Grain" not in p.text for p in service.ask("Where was grain shipped from?").contexts)


def test_bad_files_are_skipped_and_named_the_rest_ingested(service: RagService, corpus_copy: Path) -> None:
    (corpus_copy / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (corpus_copy / "latin1.txt").write_bytes("Caf\xe9 in Kyiv reopened.".encode("latin-1"))
    (corpus_copy / "empty.html").write_text("<html><body><div></div></body></html>", "utf-8")
    (corpus_copy / "broken.json").write_text('{"text": "unterminated', "utf-8")
    (corpus_copy / "records.jsonl").write_text(
        json.dumps({"id": "r1", "title": "Port of Odesa", "text": "The port of Odesa reopened in May."})
        + "\nnot json at all\n"
        + json.dumps({"id": "r2", "title": "No text"})
        + "\n",
        "utf-8",
    )
    (corpus_copy / "picture.png").write_bytes(b"\x89PNG")
    report = service.ingest([corpus_copy])
    reasons = {Path(s.path.split(":")[0]).name: s.reason for s in report.skipped}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "HTML" in reasons["empty.html"]
    assert "invalid JSON" in reasons["broken.json"]
    assert "unsupported file type" in reasons["picture.png"]
    assert sum(1 for s in report.skipped if "records.jsonl" in s.path) == 2
    assert report.added == 2  # the seed article and record r1
    ids = {a["article_id"] for a in service.list_articles()}
    assert "r1" in ids


def test_missing_path_is_a_clear_error(service: RagService, tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as exc:
        service.ingest([tmp_path / "nope"])
    assert "no such file" in exc.value.user_message


def test_formats_and_metadata(service: RagService, tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "a.md").write_text(
        "---\ntitle: Black Sea grain deal\nauthor: Jane Roe\nsource: Example Wire\npublished: 2025-03-01\n"
        "url: https://example.org/grain\n---\nTurkey brokered a grain corridor through the Black Sea.\n",
        "utf-8",
    )
    (d / "b.html").write_text(
        "<html><head><title>Drone strikes hit Kharkiv</title></head><body><nav>Home | World</nav>"
        "<article><h1>Drone strikes hit Kharkiv</h1><p>Several drones struck power stations in Kharkiv overnight, "
        "officials said on Tuesday, leaving thousands of homes without electricity.</p><p>Repair crews were sent "
        "to restore supply within two days, the regional governor said in a statement.</p></article>"
        "<footer>Copyright</footer></body></html>",
        "utf-8",
    )
    with gzip.open(d / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "id": "g1",
                    "url": "https://www.example.com/x",
                    "title": "Gz record",
                    "authors": ["A B"],
                    "published": "2025/01/02",
                    "text": "A record read from a gzip file.",
                }
            )
            + "\n"
        )
    shutil.copy(SEED, d / SEED.name)
    report = service.ingest([d])
    assert report.added == 4, report.skipped
    arts = {a["title"]: a for a in service.list_articles()}
    md = arts["Black Sea grain deal"]
    assert (md["author"], md["source"], md["published"], md["title_derived"]) == (
        "Jane Roe",
        "Example Wire",
        "2025-03-01",
        False,
    )
    assert "Drone strikes hit Kharkiv" in arts
    html_art = service.get_article(arts["Drone strikes hit Kharkiv"]["article_id"])
    assert html_art is not None and "power stations" in html_art.text and "Home | World" not in html_art.text
    gz = arts["Gz record"]
    assert (gz["source"], gz["author"], gz["published"]) == ("example.com", "A B", "2025-01-02")  # as ISO
    seed = next(a for a in arts.values() if a["title_derived"])
    assert seed["title"].startswith("Senior European intelligence officials")
    assert seed["author"] == "Stefan J. Bos" and seed["source"] == "Worthy News"
    assert seed["published"] == "" and seed["url"] == "", "no invented metadata"
