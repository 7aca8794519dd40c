"""Pure: Article -> Chunks with stable ids, character offsets and sentence spans."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Article, Chunk

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before white space,
# or at a line break. Abbreviations and initials ("J.", "U.S.", "Mr.") do not end one.
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n+")
_ABBREV = re.compile(
    r"(?:\b[A-Z]|\b(?:[A-Za-z]\.){1,4}[A-Za-z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Gov|Sen|Rep|Lt|Col|Sgt"
    r"|Prof|No|Vol|vs|etc|Inc|Corp|Ltd|Co|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.$"
)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of text, white space trimmed; covers every non-blank char."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if not m.group().startswith("\n") and _ABBREV.search(text[max(0, m.start() - 12) : m.start() + 1]):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    spans = _merge_open_quotes(text, spans)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        seg = text[s:e]
        stripped = seg.strip()
        if not stripped:
            continue
        s2 = s + (len(seg) - len(seg.lstrip()))
        out.append((s2, s2 + len(stripped)))
    return out


def _merge_open_quotes(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join a sentence that opens a quotation with the ones up to where it closes (at most 3)."""
    merged: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        s, e = spans[i]
        j = i
        while (
            j + 1 < len(spans)
            and j - i < 3
            and text[s:e].count("“") > text[s:e].count("”")
            and "\n" not in text[e : spans[j + 1][0]]
        ):
            j += 1
            e = spans[j][1]
        merged.append((s, e))
        i = j + 1
    return merged


class Chunker:
    """Sentence-aware splitting with LangChain's RecursiveCharacterTextSplitter."""

    def __init__(self, chunk_size: int = 800, chunk_overlap: int = 120, title_header: bool = False) -> None:
        self.title_header = title_header
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
            add_start_index=True,
            strip_whitespace=True,
        )

    def model_inputs(
        self, items: Sequence[tuple[Article, Sequence[Chunk]]]
    ) -> tuple[list[str], list[list[tuple[int, int]]]]:
        """What the embedding model reads for each chunk, and the chunk's sentence spans in that text.

        With `title_header` the article's title comes first, on a line of its own (a contextual chunk
        header): the chunk's vector and its sentences' vectors are read in the story's context. The
        stored text, quotes and offsets stay the body's.
        """
        texts: list[str] = []
        spans: list[list[tuple[int, int]]] = []
        for article, chunks in items:
            head = f"{article.title}\n" if self.title_header and article.title else ""
            for c in chunks:
                texts.append(head + c.text)
                shift = len(head) - c.start
                spans.append([(s + shift, e + shift) for s, e in c.sentences])
        return texts, spans

    def split(self, article: Article) -> list[Chunk]:
        """Linear in the article's length: each chunk looks only at the sentences it overlaps."""
        text = article.text
        sentences = split_sentences(text)
        ends = [e for _, e in sentences]
        docs = self._splitter.create_documents([text])
        chunks: list[Chunk] = []
        for i, doc in enumerate(docs):
            start = int(doc.metadata["start_index"])
            if start < 0 or text[start : start + len(doc.page_content)] != doc.page_content:
                start = text.find(doc.page_content, chunks[-1].start if chunks else 0)
            end = start + len(doc.page_content)
            spans: list[tuple[int, int]] = []
            for j in range(bisect.bisect_right(ends, start), len(sentences)):
                s, e = sentences[j]
                if s >= end:
                    break
                if text[max(s, start) : min(e, end)].strip():
                    spans.append((max(s, start), min(e, end)))
            chunks.append(
                Chunk(
                    chunk_id=f"{article.article_id}:{article.content_hash[:10]}:{i:04d}",
                    article_id=article.article_id,
                    index=i,
                    text=doc.page_content,
                    start=start,
                    end=end,
                    sentences=tuple(spans),
                    article=article,
                )
            )
        return chunks
