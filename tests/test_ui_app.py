"""The Streamlit app driven by AppTest over a real index: answers, refusals, library, evaluation."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, REPO, make_settings
from streamlit.testing.v1 import AppTest

from rag import Answer, Citation, RagService, read_feedback
from rag.uploads import sanitize_filename
from ui.conversation import Conversation, Exchange, to_json, to_markdown
from ui.render import unescape_md

APP = str(REPO / "ui" / "app.py")
RUSSIA = "What does Russia want?"
TULIP_Q = "How many tulip bulbs did the Lisse growers harvest?"
EVIL = """Tulip growers in Lisse [click here](http://evil.example/phish) report record bulb exports this spring.
<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">
The Lisse tulip harvest reached 3 billion bulbs this year, growers said on Monday, and exports to Japan doubled.
Growers said the exports of tulip bulbs <b>doubled</b> because April was dry and warm in the bulb fields.
"""


@pytest.fixture(scope="module")
def indexed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the seed corpus and an article full of markup (ingested once, read-only)."""
    root = tmp_path_factory.mktemp("ui-index")
    extra = root / "extra"
    extra.mkdir()
    (extra / "tulips.txt").write_text(EVIL, encoding="utf-8")
    svc = RagService(make_settings(root / "data"))
    report = svc.ingest([CORPUS, extra])
    assert report.added == 2, report.to_dict()
    return root / "data"


def _env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **extra: str) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RAG_CORPUS_DIR", str(CORPUS))
    for k, v in extra.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, indexed_dir: Path) -> AppTest:
    _env(monkeypatch, indexed_dir)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def conv(at: AppTest) -> Conversation:
    c: Conversation = at.session_state["conversation"]
    return c


def texts(at: AppTest) -> list[str]:
    """Everything shown as Markdown or text, with Markdown escapes undone."""
    return [unescape_md(m.value) for m in at.markdown] + [t.value for t in at.text]


def node_types(node: Any) -> Iterator[str]:
    yield getattr(node, "type", "")
    for child in getattr(node, "children", {}).values():
        yield from node_types(child)


# -- chat -------------------------------------------------------------------------------
def test_answer_shows_citations_and_highlighted_sources(app: AppTest, indexed_dir: Path) -> None:
    ask(app, RUSSIA)
    answer = conv(app).exchanges[-1].answer
    assert answer is not None and not answer.refused and answer.citations
    shown = texts(app)
    page = next((t for t in shown if "[1]" in t and answer.sentences[0].text in t), "")
    assert page and all(s.text in page for s in answer.sentences), "the answer with its markers is on the page"
    assert app.status[-1].label.startswith("Answered") and app.status[-1].state == "complete"
    assert answer.standalone_question in [t.value for t in app.text]
    labels = [e.label for e in app.expander]
    assert f"Sources ({len(answer.citations)})" in labels
    marks = [h.value for h in app.html if '<mark class="rag-quote"' in h.value]
    assert len(marks) == len(answer.citations)
    svc = RagService(make_settings(indexed_dir))
    for c in answer.citations:
        article = svc.get_article(c.article_id)
        assert article is not None and article.text[c.start : c.end] == c.quote
        assert any(c.quote[:60] in m for m in marks), f"quote [{c.n}] is highlighted"
    # only cited chunks are sources; the rest of the retrieved passages are listed apart
    uncited = {p.chunk_id for p in answer.contexts} - {c.chunk_id for c in answer.citations}
    if uncited:
        assert f"Also retrieved ({len(uncited)})" in labels
    # the whole article opens with the quote highlighted in it
    app.toggle(key=f"article-{conv(app).exchanges[-1].id}-1").set_value(True).run()
    whole = [h.value for h in app.html if 'class="rag-article"' in h.value]
    assert len(whole) == 1 and "<mark" in whole[0] and "intelligence officials" in whole[0]


def test_unanswerable_question_is_refused_and_says_what_is_covered(app: AppTest) -> None:
    ask(app, "What is the best recipe for chocolate chip cookies?")
    answer = conv(app).exchanges[-1].answer
    assert answer is not None and answer.refused and not answer.citations
    assert app.warning and "don't answer" in unescape_md(app.warning[0].value)
    assert app.status[-1].label.startswith("No answer in the articles")
    assert not [e for e in app.expander if e.label.startswith("Sources")]
    shown = "\n".join(texts(app))
    assert "The library holds 2 articles" in shown
    assert "Closest articles to your question" in shown


def test_followup_uses_this_sessions_conversation_only(monkeypatch: pytest.MonkeyPatch, app: AppTest) -> None:
    ask(app, RUSSIA)
    ask(app, "And what about sanctions?")
    _first, second = conv(app).exchanges
    assert second.answer is not None
    assert "Russia" in second.answer.standalone_question
    assert second.answer.standalone_question != second.question
    assert len(conv(app).history) == 2
    # another session starts empty: the same follow-up gets no context from the first one
    other = AppTest.from_file(APP, default_timeout=90)
    other.run()
    ask(other, "And what about sanctions?")
    assert len(conv(other).exchanges) == 1
    lone = conv(other).exchanges[0].answer
    assert lone is not None and lone.standalone_question == "And what about sanctions?"
    assert RUSSIA not in "\n".join(texts(other))


def test_new_conversation_and_exports(app: AppTest) -> None:
    ask(app, RUSSIA)
    c = conv(app)
    md_doc, js = to_markdown(c), json.loads(to_json(c))
    a = c.exchanges[0].answer
    assert a is not None
    assert f"## {RUSSIA}" in unescape_md(md_doc) and a.citations[0].quote in unescape_md(md_doc)
    assert js["turns"][0]["answer"]["citations"][0]["quote"] == a.citations[0].quote
    assert [b.label for b in app.download_button] == ["Markdown", "JSON"]
    next(b for b in app.button if b.label == "New conversation").click().run()
    assert not conv(app).exchanges and not app.chat_message


def test_feedback_is_appended_as_json_lines(app: AppTest, indexed_dir: Path) -> None:
    ask(app, RUSSIA)
    app.feedback[0].set_value(0).run()
    assert not app.exception
    records = read_feedback(make_settings(indexed_dir))
    last = records[-1]
    answer = conv(app).exchanges[-1].answer
    assert answer is not None
    assert last["rating"] == "down" and last["question"] == RUSSIA and last["answer"] == answer.answer
    assert [c["quote"] for c in last["citations"]] == [c.quote for c in answer.citations]
    assert last["conversation_id"] == conv(app).id


def test_article_markup_is_shown_as_text(app: AppTest) -> None:
    ask(app, TULIP_Q)
    answer = conv(app).exchanges[-1].answer
    assert answer is not None and not answer.refused
    assert any("3 billion bulbs" in c.quote for c in answer.citations)
    for m in app.markdown:
        assert "](http" not in m.value, f"a Markdown link would render: {m.value!r}"
        assert not re.search(r"https?\\?://", m.value), f"GFM would autolink: {m.value!r}"
        assert "<script" not in m.value and "<img" not in m.value
    html = "\n".join(h.value for h in app.html)
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    # the derived title carries the Markdown link as literal text
    assert any("[click here](http://evil.example/phish)" in t for t in texts(app))
    app.toggle(key=f"article-{conv(app).exchanges[-1].id}-1").set_value(True).run()
    whole = next(h.value for h in app.html if 'class="rag-article"' in h.value)
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in whole and "<script" not in whole


def _render_llm_answer() -> None:
    import streamlit as st

    from ui.answers import answer_text

    answer_text(st.session_state["answer"], lambda: 1)


def test_unsupported_sentences_carry_a_visible_warning() -> None:
    from rag import Answer, Sentence

    at = AppTest.from_function(_render_llm_answer)
    at.session_state["answer"] = Answer(
        question="q",
        standalone_question="q",
        answer="Russia wants relief [1]. It plans a moon base [1].",
        refused=False,
        mode="llm",
        sentences=[
            Sentence("Russia wants relief [1].", [1]),
            Sentence("It plans a moon base [1].", [1], supported=False),
        ],
    )
    at.run()
    body = unescape_md(at.markdown[0].value)
    assert body == "Russia wants relief [1]. ⚠️ It plans a moon base [1]."
    assert "may not support" in at.caption[0].value


def test_missing_index_shows_the_actionable_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _env(monkeypatch, tmp_path / "empty")
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception
    assert any("is empty" in unescape_md(i.value) for i in at.info)
    ask(at, RUSSIA)
    errors = [e.value for e in at.error]
    assert any("No index in" in e and "rag ingest corpus/" in e for e in errors), errors
    assert not any("Traceback" in e for e in errors)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sidebar_offers_llm_only_when_configured(monkeypatch: pytest.MonkeyPatch, indexed_dir: Path) -> None:
    _env(monkeypatch, indexed_dir)
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert at.sidebar.radio[0].options == ["Offline (extractive)"]
    assert [m.value for m in at.sidebar.metric][:1] == ["2"]
    _env(monkeypatch, indexed_dir, RAG_LLM_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1", RAG_LLM_MODEL="tiny-test")
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert at.sidebar.radio[0].options == ["Offline (extractive)", "LLM (tiny-test)"]


def test_model_error_offers_an_offline_answer(monkeypatch: pytest.MonkeyPatch, indexed_dir: Path) -> None:
    _env(
        monkeypatch,
        indexed_dir,
        RAG_LLM_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1",
        RAG_LLM_TIMEOUT="3",
        RAG_LLM_MAX_RETRIES="0",
        RAG_MODE="llm",
    )
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert at.sidebar.radio[0].value == "llm"
    ask(at, RUSSIA)
    errors = [e.value for e in at.error]
    if any("LLM mode needs a model" in e for e in errors):
        pytest.skip("this branch has no LLM answerer yet (it raises ConfigError, not ModelError)")
    assert errors and conv(at).exchanges[-1].model_error
    next(b for b in at.button if b.label == "Answer offline instead").click().run()
    last = conv(at).exchanges[-1]
    assert last.answer is not None and last.answer.mode == "extractive" and last.answer.citations
    assert not [b for b in at.button if b.label == "Answer offline instead"]


# -- library ----------------------------------------------------------------------------
def test_sanitize_filename_keeps_uploads_in_one_folder() -> None:
    assert sanitize_filename("../../etc/passwd.txt") == "passwd.txt"
    assert sanitize_filename("..\\..\\win.md") == "win.md"
    assert sanitize_filename(".hidden.json") == "hidden.json"
    assert sanitize_filename("Größe und <b>Maß.html") == "Groe_und_b_Ma.html"
    assert sanitize_filename("....") == "upload.txt"


def test_upload_and_delete_change_the_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _env(monkeypatch, data, RAG_MAX_UPLOAD_MB="1")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/library.py").run()
    assert not at.exception
    assert any("index is empty" in unescape_md(i.value) for i in at.info)
    at.file_uploader[0].set_value(
        [
            ("../../tulips report.txt", EVIL.encode(), "text/plain"),
            ("broken.json", b"{not json", "application/json"),
            ("big.txt", b"word " * 300_000, "text/plain"),
        ]
    ).run()
    next(b for b in at.button if b.label == "Ingest").click().run()
    assert not at.exception
    errors = [unescape_md(e.value) for e in at.error]
    assert any(e.startswith("broken.json:") for e in errors), errors
    assert any(e.startswith("big.txt:") and "1 MB limit" in e for e in errors), errors
    assert sorted(p.name for p in (data / "uploads").iterdir()) == ["tulips_report.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "nothing written outside the data dir"
    frame = at.dataframe[0].value
    title = "Tulip growers in Lisse [click here](http://evil.example/phish) report record bulb exports this spring"
    assert len(frame) == 1 and frame["title"][0].endswith("(derived)")
    assert title.startswith(frame["title"][0].removesuffix("… (derived)"))
    at.text_input(key="library_query").set_value("no such words").run()
    assert any("No article matches" in i.value for i in at.info)
    at.text_input(key="library_query").set_value("").run()
    # the chat answers from the uploaded article
    at.switch_page("views/chat.py").run()
    ask(at, TULIP_Q)
    ans = conv(at).exchanges[-1].answer
    assert ans is not None and any("3 billion" in c.quote for c in ans.citations)
    # delete: the article and its chunks leave the index, and the uploaded file goes with it
    at.switch_page("views/library.py").run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception
    assert any("chunks left the index" in unescape_md(s.value) for s in at.success)
    assert not at.dataframe and any("index is empty" in unescape_md(i.value) for i in at.info)
    assert not any((data / "uploads").iterdir())
    assert RagService(make_settings(data)).stats()["chunks"] == 0


# -- evaluation -------------------------------------------------------------------------
def _write_report(data_dir: Path, where: str = "latest", dataset: str = "golden") -> None:
    latest = data_dir / "evals" / where
    latest.mkdir(parents=True)
    summary = {
        "dataset": dataset,
        "mode": "extractive",
        "n": 3,
        "metrics": {
            "retrieval_recall_at_5": 0.9,
            "answer_key_fact_recall": 0.55,
            "refusal_accuracy": 1.0,
            "latency_p50_ms": 120.0,
        },
        "baseline": {
            "retrieval_recall_at_5": 0.85,
            "answer_key_fact_recall": 0.7,
            "refusal_accuracy": 1.0,
            "latency_p50_ms": 110.0,
        },
        "regressions": ["answer_key_fact_recall"],
        "metrics_by_split": {"dev": {"answer_key_fact_recall": 0.6}, "test": {"answer_key_fact_recall": 0.5}},
    }
    (latest / "summary.json").write_text(json.dumps(summary))
    items = [
        {
            "id": "g1",
            "kind": "factoid",
            "split": "dev",
            "question": "Who won?",
            "answer": "Nobody [1]",
            "refused": False,
            "citations": [{"n": 1, "title": "Match report", "quote": "Nobody won the match."}],
            "metrics": {"answer_key_fact_recall": 0.0},
            "passed": False,
            "failures": ["key fact missing: 'Alice'"],
        },
        {
            "id": "g2",
            "kind": "unanswerable",
            "split": "test",
            "question": "Cake?",
            "answer": "",
            "refused": True,
            "citations": [],
            "metrics": {"refusal_accuracy": 1.0},
            "passed": True,
            "failures": [],
        },
    ]
    (latest / "items.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")


def test_evaluation_page_placeholder_then_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _env(monkeypatch, data)
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("views/evaluation.py").run()
    assert not at.exception
    assert any("No evaluation report yet" in unescape_md(i.value) for i in at.info)
    _write_report(data)
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label in ("Dataset", "Mode", "Items")] == ["golden", "extractive", "3"]
    assert any("answer_key_fact_recall" in unescape_md(e.value) for e in at.error)
    table = at.dataframe[0].value.set_index("metric")
    assert table.loc["answer_key_fact_recall", "baseline"] == 0.7
    assert table.loc["answer_key_fact_recall", "regression"] == "yes"
    assert table.loc["answer_key_fact_recall", "test"] == 0.5
    assert abs(table.loc["retrieval_recall_at_5", "change"] - 0.05) < 1e-9
    charts = [t for t in node_types(at._tree) if "chart" in t]
    assert len(charts) == 4, charts  # answer, latency, refusal, retrieval
    failing = [e.label for e in at.expander]
    assert failing == ["g1 · factoid · dev"]
    assert "Who won?" in [t.value for t in at.text] and "Nobody won the match." in [t.value for t in at.text]
    assert any("key fact missing" in unescape_md(e.value) for e in at.error)


def test_evaluation_page_shows_each_datasets_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _env(monkeypatch, data)
    _write_report(data)  # the latest run: golden
    _write_report(data, "by-dataset/news", dataset="news")
    _write_report(data, "by-dataset/golden")
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("views/evaluation.py").run()
    assert not at.exception
    picker = at.radio(key="eval_dataset")
    assert list(picker.options) == ["latest run", "golden", "news"]
    picker.set_value("news").run()
    assert [m.value for m in at.metric if m.label == "Dataset"] == ["news"]


def test_markdown_export_keeps_article_html_and_links_as_text() -> None:
    evil = 'Look <img src=x onerror=alert(1)> and [click](http://evil.example) now.'
    cit = Citation(1, "c1", "a1", "<b>Title</b>", False, "site", "", "http://evil.example/x", evil, 0, len(evil))
    answer = Answer(question="q", standalone_question="q", answer=f"{evil} [1]", refused=False, mode="extractive",
                    citations=[cit])
    doc = to_markdown(Conversation(exchanges=[Exchange("<script>x</script> [a](http://evil.example)", "extractive",
                                                       answer=answer)]))
    for raw in (r"<img", r"<b>", r"<script>", r"\]\(http", r"http://evil"):  # only escaped forms remain
        assert not re.search(r"(?<!\\)" + raw, doc), raw
    assert evil in unescape_md(doc)  # the words are all still there, as text
