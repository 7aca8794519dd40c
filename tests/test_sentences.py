"""Which sentences may be quoted: boilerplate, headings and quotes whose speaker the reader cannot know."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import ConfigError
from rag.sentences import learned_lines, line_key, quality


@pytest.mark.parametrize(
    ("text", "reject"),
    [
        ("For the latest news, view our story for Monday, June 23.", "boilerplate:link"),
        ("More:Israel and Hamas reach deal on Gaza ceasefire, hostage release", "boilerplate:link"),
        ("Sign up for our free morning newsletter here.", "boilerplate:sign-up"),
        ("Jane Doe is a breaking news reporter at USA TODAY. Reach her at jdoe@usatoday.com.", "boilerplate:bio"),
        ("There is no peace deal ‒ because Russia doesn't want one", "heading"),
        ("Copyright 1999-2026 Worthy News.", "boilerplate:legal"),
        ("This article was originally published on Worthy News and was reproduced with permission.",
         "boilerplate:legal"),
        ("The copyright lawsuit was filed in March by three authors.", ""),
        ("Four of the officials said Russia is using talks with Washington to seek sanctions relief.", ""),
    ],
)
def test_boilerplate_and_headings_are_never_quoted(text: str, reject: str) -> None:
    assert quality(text, frozenset()).reject == reject


@pytest.mark.parametrize(
    ("text", "needs_context"),
    [
        # the example: a quote whose speaker the reader cannot know
        ("\"He's saying whatever he wants, but not what the whole world wants to hear.\"", True),
        ("“Russia is not interested in peace, and the talks are theatre.", True),  # the quote runs on: no speaker
        ('"Russia is not interested in peace," said one official.', False),  # attributed, as the article does
        ("“Moscow does not appear interested in a swift settlement,” one of the officials said.", False),
        ("It also wants to regain territory it lost in the counteroffensive.", True),
        ('"Russia is not interested in peace," said Kaja Kallas, the EU foreign policy chief.', False),
        ('"We will not give up our land," Zelensky told reporters in Kyiv.', True),  # "we": whom Zelensky speaks for
        ('"Russia will not give up the land," Zelensky told reporters in Kyiv.', False),
        ("The heads of five European spy agencies told Reuters that Moscow wants sanctions relief.", False),
        ("That plan starts and ends with buying from Black-owned businesses.", True),  # which plan?
        ("That's why the talks stalled in March.", True),
        ("Thatcher's government privatised the railways in the 1990s.", False),
        ("But then he admitted the truth: there is no peace deal on the table.", True),
        ("And so they walked out of the talks in Istanbul.", True),
        ("But the Kremlin walked out of the talks in Istanbul.", False),
        ("Now that the talks have stalled, the Kremlin is pressing on in Donetsk.", False),  # "that": a conjunction
        ("So that Kyiv can hold the line, Washington resumed the weapons deliveries.", False),
    ],
)
def test_unnamed_speakers_and_bare_pronouns_need_the_sentence_before(text: str, needs_context: bool) -> None:
    q = quality(text, frozenset())
    assert not q.reject and q.needs_context is needs_context


def test_learned_lines_reject_a_sites_repeated_line() -> None:
    line = "Stay up to date with the biggest stories of the day."
    assert quality(line, frozenset({line_key(line)})).reject == "boilerplate:learned"
    assert quality(line, frozenset()).reject == ""


def test_a_broken_learned_boilerplate_file_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    bad = tmp_path / "boilerplate.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="learn_boilerplate"):
        learned_lines(bad)
    with pytest.raises(ConfigError, match="missing or unreadable"):
        learned_lines(tmp_path / "absent.json")
    assert len(learned_lines()) > 0, "the shipped file loads"
