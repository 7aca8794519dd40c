"""Answer types: the value a question asks for, and near misses refused through the real chain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rag import Calibration, RagService, asks_for_name, expected_answer_type
from rag.answer_type import new_names, states
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much does a Joann gift card sell for on eBay?", "money"),
        ("What is Kroger's new CEO's annual salary?", "money"),
        ("Trump said the US will sell a gold card. Around how much will the gold card cost?", "money"),
        ("How much money did the European Union pledge at the Geneva talks?", "money"),
        ("How many French soldiers are stationed in Ukraine today?", "number"),
        ("How much did prices rise in May?", "number"),  # a change, not a price: any number answers it
        ("What percentage of Delaware students are chronically absent?", "number"),
        ("What is Volodymyr Zelensky's date of birth?", "date"),
        ("What year did Musk acquire the social media platform?", "date"),
        ("What year was the article on the Kroger closures published?", None),  # metadata, not a fact
        ("Which company provoked a backlash over plans to display tariffs alongside product prices?", None),
        ("Which global football star celebrated his 40th birthday?", None),
        ("What does Russia want?", None),
        ("When could Moscow face very high financial risks?", None),  # a bare "when" is answered by any time
    ],
)
def test_the_value_a_question_asks_for(question: str, kind: str | None) -> None:
    assert expected_answer_type(question) == kind


def test_what_states_a_value() -> None:
    assert states("It sold for $25 on eBay.", "money") and states("a fine of 3 million euros", "money")
    assert states("The automation cost 4.2 million kroner.", "money") and states("a 300 zloty fine", "money")
    assert states("a deal worth 1.5 billion", "money")  # an unknown currency still states an amount
    assert not states("Discounts ranged between 10-20%.", "money")
    assert states("Discounts ranged between 10-20%.", "number") and states("five spy chiefs", "number")
    assert not states("Several spy chiefs spoke.", "number")
    assert states("born on January 25, 1978", "date") and states("by summer 2026", "date")
    assert not states("He spoke on Tuesday this year.", "date")


def test_a_near_miss_is_refused_with_its_reason(corpus_service: RagService) -> None:
    """The article discusses sanctions relief but states no amount: the gate lets the topic through (its
    relevance clears the threshold), and the near-miss check refuses, saying why."""
    q = "How much money does Russia want in sanctions relief?"
    a = corpus_service.ask(q)
    threshold = corpus_service.calibration.gate_threshold
    assert a.relevance >= threshold, "the relevance gate alone refuses it: this test no longer tests the check"
    assert a.refused and "none states the amount asked for" in a.answer
    assert not a.citations and not a.sentences


def test_a_question_for_a_number_is_answered_with_one(corpus_service: RagService) -> None:
    a = corpus_service.ask("How many European spy agencies' heads spoke to Reuters?")
    assert not a.refused and "five" in a.answer
    b = corpus_service.ask("By what year is Washington pressing Ukraine to conclude a peace agreement?")
    assert not b.refused and "2026" in b.answer


BOYCOTT = {
    "a.md": "---\ntitle: Shoppers join a boycott\nsource: Example News\npublished: 2025-03-06\n---\n"
    "Consumers across the country are joining a 40-day consumer boycott of a major US retailer to protest its "
    "retreat from diversity programs. Organisers say shoppers should spend their money elsewhere until Easter. "
    "Several civil rights groups have backed the campaign, and church leaders have urged members to take part.\n",
    "b.md": "---\ntitle: What to know about the boycott\nsource: Daily Example\npublished: 2025-03-05\n---\n"
    "The 40-day boycott against Target began on March 5 and is expected to last until April 17, organisers said. "
    "The company has not commented on the protest. Sales figures for the spring quarter will show whether "
    "shoppers stayed away.\n",
}


def test_which_questions_take_the_sentence_that_names_it(tmp_path: Path) -> None:
    """ "Which retailer ...?": the sentence that repeats the question scores highest; the one that names the
    retailer is kept because it names something the question does not (Calibration.name_bonus)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in BOYCOTT.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path / "data")
    RagService(settings).ingest([corpus])
    question = "Which US retailer is facing a 40-day consumer boycott?"
    assert asks_for_name(question) and new_names(BOYCOTT["b.md"].split("---\n")[-1], question) >= {"target"}
    cal = Calibration.load()
    answers = {
        b: RagService(settings, calibration=replace(cal, name_bonus=b)).ask(question) for b in (0.0, cal.name_bonus)
    }
    assert "Target" not in answers[0.0].answer  # without the bonus: only the sentence that repeats the question
    named = answers[cal.name_bonus]
    assert not named.refused and "Target" in named.answer
    assert any("Target" in c.quote and c.source == "Daily Example" for c in named.citations)
    assert not asks_for_name("What does Russia want?") and not asks_for_name("When was Zelensky born?")
    assert new_names("Consumers are angry. Adrien Brody spoke on Monday.", "Who spoke?") == {"adrien", "brody"}
    assert new_names("The US boss of Wells Fargo's bank left.", "Which US boss of Wells Fargo left?") == set()
