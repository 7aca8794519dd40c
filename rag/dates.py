"""Publication dates as data: parsing (never guessing), day numbers for filters, the recency prior."""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from rag.errors import QuestionError
from rag.types import DateFilter

UNDATED_DAY = 0  # published_day of an article with no (parseable) date: never matches a filter
MIN_YEAR, MAX_YEAR = 1800, 2200

_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        ("jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
         "aug august", "sep sept september", "oct october", "nov november", "dec december")
    )
    for m in names.split()
}
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:$|[T\s_])")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MDY = re.compile(rf"^(?:[a-z]+,?\s+)?{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.IGNORECASE)
_DMY = re.compile(rf"^(?:[a-z]+,?\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(\d{{4}})\b", re.IGNORECASE)
# "KYIV, March 18, 2025 (Reuters) -" or "March 18, 2025 -": a dateline that states the year
_DATELINE = re.compile(
    rf"^(?:[A-Z][A-Za-z .'-]{{1,40}},\s+)?({_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}})"
    r"\s*(?:\([^)]{1,60}\)\s*)?[–—-]",
    re.IGNORECASE,
)


def _make(y: int, m: int, d: int) -> date | None:
    if not MIN_YEAR <= y <= MAX_YEAR:
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


def parse_date(value: Any) -> date | None:
    """A calendar date from a metadata value, or None when it is missing or not clearly a date.

    Accepts date/datetime objects (YAML front matter yields them), YYYY-MM-DD, YYYY/MM/DD, ISO
    datetimes (the date as written, time zone ignored), RFC 2822, "March 18, 2025", "18 March 2025".
    A year, a month or a two-digit year alone is not a date: nothing is guessed.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _make(value.year, value.month, value.day)
    if isinstance(value, date):
        return _make(value.year, value.month, value.day)
    s = str(value).strip()
    if not s:
        return None
    if m := _YMD.match(s):
        return _make(int(m[1]), int(m[2]), int(m[3]))
    if m := _COMPACT.match(s):
        return _make(int(m[1]), int(m[2]), int(m[3]))
    if m := _MDY.match(s):
        return _make(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    if m := _DMY.match(s):
        return _make(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    if re.search(r"\d{1,2}\s+[A-Za-z]{3}\s+\d{4}", s):  # RFC 2822: "Tue, 18 Mar 2025 10:00:00 +0000"
        try:
            dt = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            return None
        return _make(dt.year, dt.month, dt.day)
    return None


def dateline_date(text: str) -> date | None:
    """The date of a dateline in the first lines of the text, only when it states the year."""
    for line in [ln.strip() for ln in text.split("\n") if ln.strip()][:3]:
        if m := _DATELINE.match(line):
            return parse_date(m.group(1))
    return None


def day_number(d: date | str | None) -> int:
    """YYYYMMDD as an int (what Chroma's $gte/$lte filter on); UNDATED_DAY when there is no date."""
    if isinstance(d, str):
        d = parse_date(d) if d else None
    if d is None:
        return UNDATED_DAY
    return d.year * 10000 + d.month * 100 + d.day


def from_day_number(n: int) -> date | None:
    if n <= UNDATED_DAY:
        return None
    return _make(n // 10000, n // 100 % 100, n % 100)


def parse_iso_day(value: date | str | None, name: str) -> date | None:
    """A filter bound: a date, or a YYYY-MM-DD string; anything else is a one-line QuestionError."""
    if value is None or isinstance(value, date):
        return value
    s = str(value).strip()
    if not s:
        return None
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", s)
    d = _make(int(m[1]), int(m[2]), int(m[3])) if m else None
    if d is None:
        raise QuestionError(f"{name} {s!r} is not a date - write it as YYYY-MM-DD, e.g. 2025-03-18.")
    return d


def make_filter(
    since: date | str | None = None, until: date | str | None = None, as_of: date | str | None = None
) -> DateFilter:
    """A validated DateFilter; malformed dates and since after until/as-of raise QuestionError."""
    f = DateFilter(parse_iso_day(since, "since"), parse_iso_day(until, "until"), parse_iso_day(as_of, "as-of"))
    hi = f.upper
    if f.since is not None and hi is not None and f.since > hi:
        which = "until" if f.until is not None and f.until == hi else "as-of"
        raise QuestionError(
            f"since {f.since.isoformat()} is after {which} {hi.isoformat()} - no day can match; swap or widen them."
        )
    return f


def chroma_where(f: DateFilter) -> dict[str, Any] | None:
    """The Chroma `where` on published_day for a filter (undated chunks never match); None if inactive."""
    if not f.active:
        return None
    lo = day_number(f.since) if f.since is not None else UNDATED_DAY + 1
    clauses: list[dict[str, Any]] = [{"published_day": {"$gte": lo}}]
    if f.upper is not None:
        clauses.append({"published_day": {"$lte": day_number(f.upper)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def matches(f: DateFilter, day: int) -> bool:
    """Whether a chunk or article with this published_day passes the filter (the same rule as chroma_where)."""
    if not f.active:
        return True
    if day <= UNDATED_DAY:
        return False
    if f.since is not None and day < day_number(f.since):
        return False
    return f.upper is None or day <= day_number(f.upper)


RECENCY_WORDS = re.compile(
    r"\b(latest|this week|this month|now|currently|current|recent|recently|so far|as of today|newest|most recent)\b",
    re.IGNORECASE,
)
RECENCY_WEIGHT = 0.012  # at most about one top RRF rank (1/61 = 0.016): a prior, not a filter
RECENCY_HALF_LIFE_DAYS = 30.0


def wants_recency(question: str) -> bool:
    """Whether the question asks for the latest state ("latest", "this week", "now", "so far", ...)."""
    return RECENCY_WORDS.search(question) is not None


def recency_prior(day: int, reference: date) -> float:
    """A bonus for the fused score: RECENCY_WEIGHT on the reference day, halving every half-life before it.

    Undated passages and passages dated after the reference get nothing.
    """
    d = from_day_number(day)
    if d is None:
        return 0.0
    age = (reference - d).days
    if age < 0:
        return 0.0
    return float(RECENCY_WEIGHT * 0.5 ** (age / RECENCY_HALF_LIFE_DAYS))


def iso_date(value: Any) -> str | None:
    """YYYY-MM-DD for a stored or raw date value, None when there is none (older indexes stored raw strings)."""
    d = parse_date(value)
    return d.isoformat() if d else None
