"""Uploads: names that cannot escape the folder, and never one upload silently replacing another."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import RagService
from rag.uploads import UploadRejected, save_upload, uploads_dir
from tests.conftest import make_settings
from ui.library import ingest_uploads

FIRST = b"The Lakeside harbour council approved two new piers on Monday, the chair said."
SECOND = b"The Hillcrest school board voted to extend the library's opening hours on Tuesday."


def test_colliding_names_keep_both_files(tmp_path: Path) -> None:
    a = save_upload(tmp_path, "evil.txt", FIRST, max_mb=1)
    b = save_upload(tmp_path, "a/b/\u00e9vil.txt", SECOND, max_mb=1)  # cleans to evil.txt too
    assert a != b and a.read_bytes() == FIRST and b.read_bytes() == SECOND
    assert a.parent == b.parent == uploads_dir(tmp_path).resolve()
    assert save_upload(tmp_path, "evil.txt", FIRST, max_mb=1) == a  # the same bytes again: the same file
    assert save_upload(tmp_path, "evil.txt", SECOND, max_mb=1, replace=True) == a  # replacing is explicit
    assert a.read_bytes() == SECOND
    assert not list(a.parent.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [("big.txt", b"x" * 2_000_000, "over the 1 MB limit"), ("empty.txt", b"  \n", "empty"), ("a.exe", b"MZ", "type")],
)
def test_bad_uploads_are_refused_before_writing(tmp_path: Path, name: str, data: bytes, problem: str) -> None:
    with pytest.raises(UploadRejected) as info:
        save_upload(tmp_path, name, data, max_mb=1)
    assert problem in info.value.problem and not uploads_dir(tmp_path).exists()


def test_two_uploads_with_one_clean_name_are_two_articles(tmp_path: Path) -> None:
    svc = RagService(make_settings(tmp_path / "data"))
    first = ingest_uploads(svc, [("evil.txt", FIRST)])
    second = ingest_uploads(svc, [("a/b/\u00e9vil.txt", SECOND)])
    assert (first.reports[0].added, second.reports[0].added, second.reports[0].updated) == (1, 1, 0)
    assert svc.stats()["articles"] == 2
    assert {a["title"] for a in svc.list_articles()} == {
        "The Lakeside harbour council approved two new piers on Monday, the chair said",
        "The Hillcrest school board voted to extend the library's opening hours on Tuesday",
    }
