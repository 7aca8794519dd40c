"""Which sentences are worth quoting: boilerplate, headings and unresolved pronoun subjects are not."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.errors import ConfigError

BOILERPLATE_FILE = Path(__file__).with_name("boilerplate.json")

# The documented rule set (beside the lines learned from data in boilerplate.json). Each rule names a kind of
# line seen in the RealTime QA 2025 articles that is page furniture, not reporting.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("link", r"^\s*(more|related|read more|see also|also read|watch|listen)\s*:"),
        ("link", r"\b(read|see|view|click) (more|here|our (full |latest )?(story|coverage)|the full story)\b"),
        ("link", r"\bfor the latest (news|updates)\b"),
        ("sign-up", r"\b(sign up|subscribe)\b.*\b(newsletter|for free|to our|here)\b|\bnewsletter\b"),
        ("credit", r"^\s*(contributing|reporting by|editing by|additional reporting|written by|compiled by)\b"),
        ("bio", r"[\w.+-]+@[\w-]+\.[\w.]+|\b(follow|reach|email|contact) (him|her|them|us|me)\b"),
        ("bio", r"\b(is|was) an? [\w ,-]{0,60}(reporter|correspondent|editor|columnist|writer|journalist)\b"
                r".{0,40}\b(for|at|with) [A-Z]"),
        ("bio", r"^\s*[A-Z][\w.'-]+ [A-Z][\w.'-]+ covers\b"),
        ("label", r"^\s*(editor's note|ai-assisted summary|advertisement|story continues|need a break)\b"),
        ("legal", r"^\s*(copyright\b|©|\(c\) \d)|\ball rights reserved\b|\b(originally (published|appeared)|"
                  r"republished|reproduced|reprinted) (on|in|with|by)\b.*\b(permission|publication|news|times|post)\b"),
        ("caption", r"\((photo|image|video|credit)\b|\bgetty images\b|\bap photo\b|^\s*(photo|image|credit)\s*:"),
    )
)
_TERMINAL = re.compile(r"[.!…][\"”’')\]]*$")
_PRONOUN = re.compile(
    r"^[\"“‘'(\s]*(?:(?:but|and|so|yet|then|still|now),?\s+(?!that\b))*"  # "But then he ..." ("So that ..." not)
    r"(he|she|it|they|this|that|these|those|his|her|its|their|we|i)\b(?!-)",
    re.IGNORECASE,
)
_UNNAMED_QUOTE = re.compile(r"^[\"“].*[\"”],? (he|she|they|it) (said|says|added|told|wrote|noted|continued)\b",
                            re.IGNORECASE | re.DOTALL)
_BARE_QUOTE = re.compile(r"^[\"“][^\"“”]*[\"”]$", re.DOTALL)
_OPENS_QUOTE = re.compile(r"^\s*[\"“]")
# a quote attributed in the same sentence ('"...," Kallas said.', '"...," one official said.', "according to")
_ATTRIBUTED = re.compile(
    r"\b(said|says|say|told|tells|added|adds|wrote|writes|noted|notes|stated|asked|argued|warned|insisted|"
    r"explained|posted|according to)\b",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")


def line_key(text: str) -> str:
    """A line as boilerplate.json stores it: lower case, quotes straightened, digits collapsed."""
    t = text.lower().replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'")
    return _DIGITS.sub("0", " ".join(t.split())).strip(" .")


@lru_cache(maxsize=4)
def learned_lines(path: Path = BOILERPLATE_FILE) -> frozenset[str]:
    """Lines repeated across unrelated stories of one site (python -m evals.learn_boilerplate).

    The file ships with the package: a missing or unreadable one is an error, never an empty list."""
    try:
        return frozenset(str(x) for x in json.loads(path.read_text(encoding="utf-8"))["lines"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"The learned boilerplate lines {path} are missing or unreadable ({exc.__class__.__name__}) - restore "
            "the file from git or relearn it: python -m evals.learn_boilerplate."
        ) from exc


@dataclass(frozen=True)
class Quality:
    """Why a sentence may not be quoted (reject), or that it needs the sentence before it (needs_context)."""

    reject: str = ""  # "", "boilerplate:<rule>", "heading"
    needs_context: bool = False


def quality(text: str, learned: frozenset[str] | None = None) -> Quality:
    """Judge one sentence on its own text."""
    lines = learned_lines() if learned is None else learned
    key = line_key(text)
    if key in lines:
        return Quality("boilerplate:learned")
    for name, rule in _RULES:
        if rule.search(text):
            return Quality(f"boilerplate:{name}")
    stripped = text.strip()
    if not _TERMINAL.search(stripped) or len(stripped.split()) < 4:
        return Quality("heading")  # no full stop (a heading, a list line, a question, "...the following:")
    # a quote the sentence does not attribute ('"He's saying whatever he wants, but ...' running on into the next
    # sentence) needs the sentence before it, as does one that opens with a pronoun ('"We will ...," X said');
    # '"...," one official said' is attributed (to an unnamed source, as the article itself does)
    unnamed = bool(_OPENS_QUOTE.match(stripped)) and not _ATTRIBUTED.search(stripped)
    needs = bool(_PRONOUN.match(stripped) or _UNNAMED_QUOTE.match(stripped) or _BARE_QUOTE.match(stripped) or unnamed)
    return Quality("", needs)
