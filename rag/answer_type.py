"""Answer types: what kind of value a question asks for, and whether a sentence states one.

A question that asks "how much", "how many" or for a date of birth is answered only by a sentence that
states an amount, a number or a date. When none of the sentences the answerer would quote states one, the
articles discuss the topic but not the value asked for (a near miss: "How much does a Joann gift card sell
for on eBay?" over articles about Joann's closing sales), and the question is refused with that reason
instead of being answered with the nearest sentence on the topic. This is the expected-answer-type check of
classic question answering; rag.chain applies it after the relevance gate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from rag.text import STOPWORDS

if TYPE_CHECKING:
    from rag.gate import Candidate

Kind = Literal["money", "number", "date"]

_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
    r"|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?"
    r"|billions?|trillions?|dozens?|half|a third|a quarter|twice|double|triple"
)
_MONTHS = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t|tember)?|oct(ober)?|nov(ember)?"
    r"|dec(ember)?"
)
_CURRENCY = (
    r"dollars?|euros?|pounds?|sterling|yen|yuan|renminbi|rupees?|rupiah|rubles?|roubles?|francs?|pesos?|won|cents?"
    r"|pence|hryvnias?|kroner|krone|kronor|krona|zlotys?|złoty|forints?|koruna|lei|leu|lira|lire|shekels?|dinars?"
    r"|dirhams?|riyals?|rials?|rand|baht|ringgit|reais|real|naira|shillings?|taka|dong|cedis?|kwacha|bitcoins?"
    r"|usd|eur|gbp|jpy|cny|chf"
)

# "How much does X cost / sell for / pay ...", "What is X's salary / the price of ..."
_MONEY_Q = re.compile(
    r"\bhow much\b.*\b(cost|costs|costing|pay|pays|paid|paying|spend|spends|spent|sell|sells|sold|charge|charges"
    r"|charged|earn|earns|earned|worth|money|fund|funds|funding|pledge|pledged|invest|invested|owe|owes|owed"
    r"|bid|offer|offered|budget|donate|donated)\b"
    r"|(^|[.?!]\s+)what\b.*\b(salary|salaries|wage|wages|price|prices|cost|fee|fees|fare|fares|valuation|budget"
    r"|net worth|compensation|pay package|ransom|bail)\W*$",
    re.IGNORECASE,
)
_NUMBER_Q = re.compile(
    r"\bhow (many|much|old|long|far|tall|high|big|large|often)\b|\bwhat (percentage|percent|share|proportion)\b"
    r"|\bby how much\b|\bwhat (number|age)\b",
    re.IGNORECASE,
)
_DATE_Q = re.compile(
    r"\b(date of birth|birth ?date|when was \S+(\s\S+){0,3} born|(in )?what year|in which year"
    r"|on what date|what date)\b",
    re.IGNORECASE,
)
_PUBLISHED_Q = re.compile(r"\b(published|posted|written|wrote|article)\b", re.IGNORECASE)  # metadata, not a fact

# an amount: a currency sign, a number with a currency, or a number in millions or more (amounts of money are
# usually that large, and an unknown currency must not turn a stated amount into a refusal)
_MONEY = re.compile(
    rf"[$€£¥₹₽₴₪₩]\s?\d|\d[\d,.]*\s?(k|m|bn|million|billion|trillion)?\s?({_CURRENCY})\b|\b(US|A|C|HK|NZ)\$"
    r"|\d[\d,.]*\s?(m|bn|million|billion|trillion)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(rf"\d|\b({_NUMBER_WORDS})\b", re.IGNORECASE)
_DATE = re.compile(
    rf"\b(1[89]\d\d|20\d\d)\b|\b({_MONTHS})\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+({_MONTHS})\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b",
    re.IGNORECASE,
)
_STATES = {"money": _MONEY, "number": _NUMBER, "date": _DATE}
NAMES = {"money": "amount", "number": "number", "date": "date"}  # as a refusal says it


def expected(question: str) -> Kind | None:
    """The kind of value the question asks for: money ("how much does it cost", "what is her salary"),
    a number ("how many", "how old", "what percentage"), a date ("date of birth", "in what year"), or None.

    Questions about an article's own publication ("What year was the article published?") are metadata
    questions, answered from the index's metadata, so they ask for no type here."""
    if _MONEY_Q.search(question):
        return "money"
    if _NUMBER_Q.search(question):
        return "number"
    if _DATE_Q.search(question) and not _PUBLISHED_Q.search(question):
        return "date"
    return None


def states(text: str, kind: Kind) -> bool:
    """Whether the text states a value of that kind (a currency amount; any number; a year or a day)."""
    return _STATES[kind].search(text) is not None


def first_stating(cands: Sequence[Candidate], kind: Kind, keep_ratio: float) -> Candidate | None:
    """The best-scoring quotable candidate (score within keep_ratio of the best, as the answerer keeps them)
    that states a value of the kind; None when none does. Candidates come sorted by score."""
    if not cands:
        return None
    floor = cands[0].score * keep_ratio
    return next((c for c in cands if c.score >= floor and states(c.text, kind)), None)


_NAME_Q = re.compile(r"\bwhich\b|(^|[.?!:]\s+)(who|whom|whose)\b", re.IGNORECASE)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’&.-]*")
_NOT_NAMES = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday i".split()
)


def asks_for_name(question: str) -> bool:
    """Whether the question asks which one or who ("Which US retailer ...?", "... named after which astronaut?",
    "Who was elected ...?"): its answer is a name the question does not contain."""
    return _NAME_Q.search(question) is not None and not _DATE_Q.search(question)


def new_names(text: str, question: str) -> set[str]:
    """Capitalised words of the text that the question does not contain: names, except a sentence's first word
    (capitalised anyway) unless the next word is capitalised too, and months and weekdays."""
    asked = {_bare(w) for w in re.findall(r"[\w'’]+", question)}
    out: set[str] = set()
    for m in _CAPITALISED.finditer(text):
        before = text[: m.start()].rstrip()
        word = _bare(m.group().rstrip("."))
        initial = not before or before[-1] in ".!?\"“'‘:—–-("
        if initial and not _CAPITALISED.match(text[m.end() :].lstrip()):
            continue
        if word and word not in asked and word not in _NOT_NAMES and word not in STOPWORDS:
            out.add(word)
    return out


def _bare(word: str) -> str:
    """Lower-cased, without a possessive 's."""
    return word.lower().removesuffix("'s").removesuffix("’s")


def refusal_note(kind: Kind) -> str:
    """Why a near miss is refused: the topic is there, the value asked for is not."""
    return f"The passages found discuss it, but none states the {NAMES[kind]} asked for."
