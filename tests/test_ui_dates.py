"""Dates in the app: the sidebar's date range filters answers, citations and exports show dates, Library timeline."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from conftest import REPO, make_settings
from streamlit.testing.v1 import AppTest

from rag import RagService
from ui.conversation import Conversation, to_json, to_markdown
from ui.library import articles_per_week
from ui.render import unescape_md

APP = str(REPO / "ui" / "app.py")
DOCS = {
    "jan.md": "---\ntitle: Istanbul round\npublished: 2025-01-10\n---\nNegotiators met in Istanbul to discuss the "
    "Black Sea grain corridor. The grain corridor talks in Istanbul ended without agreement on shipping insurance.\n",
    "mar.md": "---\ntitle: Geneva signing\npublished: 2025-03-20\n---\nNegotiators signed the Black Sea grain corridor "
    "deal in Geneva. The grain corridor agreement signed in Geneva covers shipping insurance for cargo vessels.\n",
    "undated.txt": "The grain corridor was discussed by negotiators again. Shipping insurance remains debated.\n",
}
Q = "Where did negotiators sign the grain corridor deal?"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui-dates")
    (root / "corpus").mkdir()
    for name, text in DOCS.items():
        (root / "corpus" / name).write_text(text)
    RagService(make_settings(root / "data")).ingest([root / "corpus"])
    return root / "data"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> AppTest:
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception
    return at


def _conv(at: AppTest) -> Conversation:
    c: Conversation = at.session_state["conversation"]
    return c


def test_sidebar_date_range_filters_and_exports_show_dates(app: AppTest) -> None:
    app.toggle(key="date_filter_on").set_value(True).run()
    app.date_input(key="date_range").set_value((date(2025, 1, 1), date(2025, 2, 28))).run()
    app.chat_input[0].set_value(Q).run()
    assert not app.exception, [e.value for e in app.exception]
    answer = _conv(app).exchanges[-1].answer
    assert answer is not None and not answer.refused
    assert {p.title for p in answer.contexts} == {"Istanbul round"}, "March's article is outside the range"
    assert any("2025-01-10" in unescape_md(c.value) for c in app.caption), "the citation shows its date"
    assert "2025-01-10" in unescape_md(to_markdown(_conv(app)))
    cits = json.loads(to_json(_conv(app)))["turns"][0]["answer"]["citations"]
    assert {c["published"] for c in cits} == {"2025-01-10"}

    app.toggle(key="date_filter_on").set_value(False).run()
    app.chat_input[0].set_value(Q).run()
    answer = _conv(app).exchanges[-1].answer
    assert answer is not None and "Geneva signing" in {p.title for p in answer.contexts}


def test_library_shows_date_range_and_timeline(app: AppTest) -> None:
    app.switch_page("views/library.py").run()
    assert not app.exception
    assert any("Published 2025-01-10 to 2025-03-20; 1 undated" in unescape_md(c.value) for c in app.caption)
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart"), "a timeline chart is drawn"
    frame = app.dataframe[0].value
    assert sorted(frame["published"]) == ["2025-01-10", "2025-03-20", "undated"]


def test_articles_per_week_counts_empty_weeks_and_undated() -> None:
    weekly, undated = articles_per_week(
        [{"published": "2025-01-10"}, {"published": "2025-01-12"}, {"published": "2025-01-27"}, {"published": ""}]
    )
    assert undated == 1
    assert list(weekly.items()) == [(date(2025, 1, 6), 2), (date(2025, 1, 13), 0), (date(2025, 1, 20), 0),
                                    (date(2025, 1, 27), 1)]
