"""Text that came from articles or users, made safe to show: escaped Markdown and HTML."""

from __future__ import annotations

import html
import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping the ones
# Markdown, GFM autolinks, Streamlit's directives (:red[...]), emoji codes and LaTeX ($) use
# turns article text into literal text.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=^\"'@%])")
# GFM turns bare URLs, www. names and e-mail addresses into links after parsing, escapes or not:
# an invisible word joiner inside "http:", "www." and after "@" keeps them text.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www|@)([:.]|(?<=@))")
_MARKER = re.compile(r"\[(\d+)\]")

PASSAGE_STYLE = (
    "white-space: pre-wrap; line-height: 1.5; padding: 0.5rem 0.75rem; border-left: 3px solid #c9c9c9; "
    "margin: 0.25rem 0 0.75rem 0;"
)
MARK_STYLE = "background-color: #fff1a8; padding: 0 2px; border-radius: 2px;"


def md(text: str) -> str:
    """Plain text as Markdown that renders exactly as the text (no links, HTML, math or styling)."""
    text = _AUTOLINK.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def unescape_md(text: str) -> str:
    """The inverse of md() (for tests and exports)."""
    return re.sub(r"\\(.)", r"\1", text.replace("  \n", "\n")).replace(WORD_JOINER, "")


def highlighted_html(
    text: str, spans: list[tuple[int, int]], *, css_class: str = "rag-passage", max_height_px: int | None = None
) -> str:
    """Text as escaped HTML in a div, with the character spans [start, end) wrapped in <mark>."""
    parts: list[str] = []
    pos = 0
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if end <= start or start < pos:
            continue
        parts.append(html.escape(text[pos:start]))
        parts.append(f'<mark class="rag-quote" style="{MARK_STYLE}">{html.escape(text[start:end])}</mark>')
        pos = end
    parts.append(html.escape(text[pos:]))
    style = PASSAGE_STYLE
    if max_height_px:
        style += f" max-height: {max_height_px}px; overflow-y: auto;"
    return f'<div class="{css_class}" style="{style}">{"".join(parts)}</div>'


def quote_spans(passage_text: str, passage_start: int, quotes: list[tuple[str, int, int]]) -> list[tuple[int, int]]:
    """Where each (quote, article start, article end) lies in the passage; by offsets, else by search."""
    spans = []
    for quote, start, end in quotes:
        s, e = start - passage_start, end - passage_start
        if 0 <= s < e <= len(passage_text) and passage_text[s:e] == quote:
            spans.append((s, e))
            continue
        found = passage_text.find(quote) if quote else -1
        if found >= 0:
            spans.append((found, found + len(quote)))
    return spans


def has_marker(text: str) -> bool:
    return bool(_MARKER.search(text))
