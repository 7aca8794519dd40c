"""Issue 15's "done when": the two questions over the seed article plus 26 RealTime QA 2025 articles on the
Russia-Ukraine talks (evals/datasets/russia_talks_articles.txt, `python -m evals.brief_demo`) give dated,
attributed answers without boilerplate, newest first for "latest"."""

from __future__ import annotations

import re
from pathlib import Path

from evals.brief_demo import QUESTIONS, demo_service
from rag import iso_date
from rag.sentences import quality
from tests.conftest import make_settings

LABEL = re.compile(r"^(?P<source>[^,\n]+), (?P<date>\d{4}-\d{2}-\d{2}|undated): ")


def test_the_brief_over_the_russia_talks_is_dated_attributed_and_clean(tmp_path: Path) -> None:
    svc = demo_service(make_settings(tmp_path / "data"))
    assert svc.stats()["articles"] == 27, "the seed article and the 26 listed"
    answers = {q: svc.ask(q, mode="extractive") for q in QUESTIONS}
    for q, a in answers.items():
        assert not a.refused, q
        groups = a.answer.split("\n\n")
        labels = [LABEL.match(g) for g in groups]
        assert all(labels), f"every group is led by its source and date: {groups}"
        for s in a.sentences:
            assert not quality(s.text).reject, f"boilerplate or a heading quoted: {s.text!r}"
        for c in a.citations:
            art = svc.get_article(c.article_id)
            assert art is not None and art.text[c.start : c.end] == c.quote
            assert iso_date(c.published) in {m["date"] for m in labels if m} | {None}
    want = answers["What does Russia want?"].answer
    assert "Zelensky" in want and "neutral" in want, "Russia's stated goals (the seed article) are covered"
    latest = [m["date"] for m in map(LABEL.match, answers[QUESTIONS[1]].answer.split("\n\n")) if m]
    dated = [d for d in latest if d != "undated"]
    assert dated == sorted(dated, reverse=True), f"the latest news comes first: {latest}"
