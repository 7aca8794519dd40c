"""Citations: a quote at article offsets, and markers in model output (parsing, stream-safe rewriting,
renumbering, sentence grouping)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rag.chunking import split_sentences
from rag.dates import iso_date
from rag.types import Citation, Passage

# [1]  [1, 2]  [1][2]  [[1]]  【1】  [Passage 1]  [source 2; 3]
MARKER = re.compile(
    r"(?:\[\[|\[|【)\s*(?:(?:passage|source|doc(?:ument)?|ref)\s*)?"
    r"(\d{1,3}(?:\s*(?:,|;|and|&)\s*(?:(?:passage|source|doc(?:ument)?|ref)\s*)?\d{1,3})*)"
    r"\s*(?:\]\]|\]|】)",
    re.IGNORECASE,
)
MAX_MARKER_CHARS = 40  # a held-back "[..." longer than this cannot become a marker
_PREFIX = re.compile(r"(?:\[\[|\[|【)[\w\s,;&]*(?:\]\]|\]|】)?")


def marker_numbers(body: str) -> list[int]:
    """The numbers inside one marker's brackets, in order."""
    return [int(x) for x in re.findall(r"\d+", body)]


@dataclass(frozen=True)
class Marker:
    start: int
    end: int
    numbers: tuple[int, ...]


def find_markers(text: str) -> list[Marker]:
    return [Marker(m.start(), m.end(), tuple(marker_numbers(m.group(1)))) for m in MARKER.finditer(text)]


@dataclass
class Renumberer:
    """Maps the model's passage numbers (1..n_passages) to display numbers by first use.

    Unknown numbers (0, or beyond the passages given) map to None and are dropped.
    """

    n_passages: int
    display: dict[int, int] = field(default_factory=dict)  # raw passage number -> display number

    def __call__(self, raw: int) -> int | None:
        if not 1 <= raw <= self.n_passages:
            return None
        return self.display.setdefault(raw, len(self.display) + 1)

    def passage_of(self, n: int) -> int:
        """The 0-based passage index behind display number n."""
        for raw, shown in self.display.items():
            if shown == n:
                return raw - 1
        raise KeyError(n)

    def add(self, passage_index: int) -> int:
        """Display number for a passage cited after the fact (attached)."""
        return self.display.setdefault(passage_index + 1, len(self.display) + 1)


def render(numbers: Iterable[int]) -> str:
    return "".join(f"[{n}]" for n in numbers)


def rewrite(text: str, renumber: Renumberer) -> str:
    """Markers normalised to [n][m] with display numbers; unknown ones removed with their space."""
    out: list[str] = []
    pos = 0
    for m in find_markers(text):
        shown = list(dict.fromkeys(n for n in (renumber(r) for r in m.numbers) if n is not None))
        head = text[pos : m.start]
        if not shown:
            head = head.rstrip(" ")
        out.append(head + render(shown))
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


class MarkerStream:
    """Rewrites markers in a stream of text pieces, holding back a marker split across pieces."""

    def __init__(self, renumber: Renumberer) -> None:
        self.renumber = renumber
        self.raw = ""
        self._pending = ""

    def feed(self, piece: str) -> str:
        """Text safe to show now (markers rewritten); a possible partial marker is held back."""
        self.raw += piece
        self._pending += piece
        cut = self._safe_cut(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return rewrite(ready, self.renumber)

    def flush(self) -> str:
        ready, self._pending = self._pending, ""
        return rewrite(ready, self.renumber)

    @staticmethod
    def _safe_cut(text: str) -> int:
        """Index up to which text holds no unfinished marker ("[", "[1", "[[1]", "[Passage 2,")."""
        i = max(text.rfind("["), text.rfind("【"))
        if i < 0:
            return len(text)
        if i > 0 and text[i - 1] == "[":
            i -= 1
        tail = text[i:]
        if len(tail) > MAX_MARKER_CHARS or not _PREFIX.fullmatch(tail):
            return len(text)
        complete = tail.endswith(("]", "】")) and not (tail.startswith("[[") and not tail.endswith("]]"))
        return len(text) if complete else i


@dataclass
class DraftSentence:
    """A sentence of the model's answer with the passage indexes (0-based) it cited."""

    text: str
    passages: list[int]


def split_cited(raw: str, n_passages: int) -> list[DraftSentence]:
    """Sentences of raw model text with their cited passages; markers after a full stop go to the
    sentence before it. Unknown passage numbers are dropped."""
    clean: list[str] = []
    anchors: list[tuple[int, tuple[int, ...]]] = []  # position in clean text, raw numbers
    pos = 0
    length = 0
    for m in find_markers(raw):
        head = raw[pos : m.start].rstrip(" ") if raw[pos : m.start].strip() else raw[pos : m.start]
        clean.append(head)
        length += len(head)
        anchors.append((length, m.numbers))
        pos = m.end
        if head.rstrip()[-1:] in (".", "!", "?") and raw[pos : pos + 1] == ".":  # "end. [1]." -> "end."
            pos += 1
    clean.append(raw[pos:])
    text = "".join(clean)
    spans = split_sentences(text)
    drafts = [DraftSentence(text[s:e], []) for s, e in spans]
    if not drafts:
        return []
    for at, numbers in anchors:
        idx = 0
        for j, (s, _e) in enumerate(spans):
            if s < at:
                idx = j
        for r in numbers:
            if 1 <= r <= n_passages and (r - 1) not in drafts[idx].passages:
                drafts[idx].passages.append(r - 1)
    # a sentence that is only punctuation left over from a removed marker
    return [d for d in drafts if re.search(r"\w", d.text)]


def make_citation(n: int, p: Passage, start: int, end: int) -> Citation:
    """A citation whose quote is the passage text at article offsets [start, end)."""
    m = p.metadata
    return Citation(
        n=n,
        chunk_id=p.chunk_id,
        article_id=p.article_id,
        title=str(m.get("title", "")),
        title_derived=bool(m.get("title_derived", False)),
        source=str(m.get("source", "")),
        published=iso_date(m.get("published")),
        url=str(m.get("url", "")),
        quote=p.text[start - p.start : end - p.start],
        start=start,
        end=end,
        also_reported_by=list(p.also),
    )
