"""Files -> Articles: .txt, .md (YAML front matter), .html, .json/.jsonl/.jsonl.gz records."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from rag.dates import dateline_date, parse_date
from rag.errors import CorpusError
from rag.types import Article

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz")
MAX_FILE_BYTES = 200 * 1024 * 1024  # a file of many records (.json); one article is bounded by RAG_MAX_ARTICLE_MB
DEFAULT_MAX_ARTICLE_MB = 5.0
MAX_TITLE_CHARS = 90

_BYLINE = re.compile(r"^\s*by\s+([^,\n]{3,80})(?:,[^\n]*)?$", re.IGNORECASE)
# A closing author bio ("Gabe Hauari is a national trending news reporter at USA TODAY.", "Eric Lagatta covers
# breaking and trending news for USA TODAY."), as USA TODAY and its network sign articles in RealTime QA 2025.
_BIO = re.compile(r"^([A-Z][\w.'-]+(?: [A-Z][\w.'-]+){1,3}) (?:is an? [\w ,-]{0,60}(?:reporter|correspondent|writer|"
                  r"editor|columnist|journalist)\b[^.]{0,40}\b(?:for|at|with) [A-Z]"
                  r"|covers [\w ,&-]{3,80} (?:for|at) [A-Z])")
# "BUDAPEST (Worthy News) –", "KYIV, Ukraine (AP) —", "WASHINGTON —": a place in capitals (a region may
# follow), then the outlet in brackets and/or a dash, at the start of one of the first lines
_DATELINE = re.compile(
    r"^(?P<place>[A-Z][A-Z.'-]{2,}(?: [A-Z][A-Z.'-]+){0,3}(?:, [A-Z][\w.'-]+(?: [A-Z][\w.'-]+){0,2})?)\s*"
    r"(?:\((?P<outlet>[^)]{2,60})\)\s*)?[–—-]\s+(?=\S)"
)


@dataclass
class Skipped:
    path: str
    reason: str


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Supported files under paths (sorted, hidden ones left out); a missing path raises."""
    for p in paths:
        if not p.exists():
            raise CorpusError(str(p), "no such file or directory - check the path")
        if p.is_file():
            yield p
            continue
        for f in sorted(p.rglob("*")):
            if any(part.startswith(".") for part in f.relative_to(p).parts):
                continue
            # A broken link, a link loop or a link to a folder is yielded too: load_articles names it.
            if f.is_file() or (f.is_symlink() and (not f.exists() or f.is_dir())):
                yield f


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise CorpusError(str(path), "looks like a binary file (NUL bytes); skipped")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            str(path), f"not UTF-8 text (byte {exc.start}); convert it to UTF-8 and ingest again"
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _file_id(path: Path, suffix: str = "") -> str:
    return hashlib.sha1(f"{path.resolve()}{suffix}".encode()).hexdigest()[:16]


def derive_title(text: str) -> str:
    """A display title from the text: the first sentence of the body, shortened."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    body = next((ln for ln in lines if not _BYLINE.match(ln) and len(ln) > 20), lines[0] if lines else "")
    body = _DATELINE.sub("", body)
    first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    if len(first) <= MAX_TITLE_CHARS:
        return first.rstrip(".")
    cut = first[:MAX_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:–- ") + "…"


def _in_text_metadata(text: str) -> dict[str, str]:
    """Byline author, dateline place and source, when the text itself states them."""
    meta: dict[str, str] = {}
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()][:3]
    for ln in lines:
        if "author" not in meta and (m := _BYLINE.match(ln)):
            meta["author"] = m.group(1).strip()
        if "place" not in meta and (m := _DATELINE.match(ln)):
            meta["place"] = m.group("place").strip()
            if m.group("outlet"):
                meta["source"] = m.group("outlet").strip()
    if "author" not in meta:
        tail = [ln.strip() for ln in text.split("\n") if ln.strip()][-4:]
        names = [m.group(1) for ln in tail if (m := _BIO.match(ln))]
        if names:
            meta["author"] = ", ".join(dict.fromkeys(names))
    return meta


def make_article(article_id: str, text: str, meta: dict[str, Any], source_path: str) -> Article:
    text = text.strip()
    if not text:
        raise CorpusError(source_path, "has no text")
    found = _in_text_metadata(text)
    title = str(meta.get("title") or "").strip()
    authors = meta.get("authors")
    author = meta.get("author") or (", ".join(map(str, authors)) if isinstance(authors, list) else authors)
    url = str(meta.get("url") or "")
    source = meta.get("source") or meta.get("sitename") or found.get("source")
    if not source and url:
        source = urlparse(url).netloc.removeprefix("www.")
    raw_date = meta.get("published") or meta.get("date")
    day = parse_date(raw_date) or dateline_date(text)
    return Article(
        article_id=article_id,
        text=text,
        title=title or derive_title(text),
        title_derived=not title,
        source=str(source or ""),
        published=day.isoformat() if day else "",
        url=url,
        author=str(author or found.get("author") or ""),
        place=str(meta.get("place") or found.get("place") or ""),
        source_path=source_path,
        content_hash=content_hash(text),
        published_raw="" if raw_date is None else str(raw_date),
    )


def _front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise CorpusError(str(path), f"invalid YAML front matter ({exc.__class__.__name__})") from exc
    if not isinstance(meta, dict):
        raise CorpusError(str(path), "front matter is not a mapping of key: value")
    body = text[end + 4 :].lstrip("-").lstrip("\n")
    return {str(k).lower(): v for k, v in meta.items()}, body


def _markdown(path: Path, text: str) -> Article:
    meta, body = _front_matter(path, text)
    if not meta.get("title"):
        m = re.match(r"\s*#\s+(.+)\n", body)
        if m:
            meta["title"] = m.group(1).strip()
    return make_article(_file_id(path), body, meta, str(path))


def _html(path: Path, text: str) -> Article:
    import trafilatura

    doc = trafilatura.bare_extraction(text, with_metadata=True, include_comments=False)
    body = getattr(doc, "text", None) if doc is not None else None
    if not body or not body.strip():
        raise CorpusError(str(path), "no article text could be extracted from this HTML")
    meta = {
        "title": getattr(doc, "title", None),
        "author": getattr(doc, "author", None),
        "published": getattr(doc, "date", None),
        "url": getattr(doc, "url", None),
        "source": getattr(doc, "sitename", None),
    }
    return make_article(_file_id(path), body, meta, str(path))


def _record(path: Path, rec: Any, where: str, fallback_id: str) -> Article:
    if not isinstance(rec, dict):
        raise CorpusError(where, "record is not a JSON object")
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(where, "record has no non-empty 'text' field")
    rid = rec.get("id")
    return make_article(str(rid) if rid not in (None, "") else fallback_id, text, rec, str(path))


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:  # type: ignore[operator]
            for n, raw in enumerate(fh, 1):
                if raw.strip():
                    yield n, _decode(Path(f"{path}:{n}"), raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CorpusError(str(path), f"cannot be read ({exc}); the file may be truncated") from exc


def load_articles(
    path: Path, skipped: list[Skipped], max_article_bytes: int = int(DEFAULT_MAX_ARTICLE_MB * 2**20)
) -> Iterator[Article]:
    """Articles of one file; bad or oversized records are appended to skipped, a bad file raises CorpusError.

    An article over max_article_bytes (RAG_MAX_ARTICLE_MB) is skipped before it is chunked or embedded: one
    such file (say a 30 MB log saved as .txt) would otherwise hold an ingest for many minutes.
    """
    limit_mb = f"{max_article_bytes / 2**20:g}"
    if path.is_symlink() and not path.exists():
        raise CorpusError(str(path), "is a broken symbolic link or a link loop; skipped - fix or remove the link")
    if path.is_symlink() and path.is_dir():
        raise CorpusError(str(path), "is a link to a folder, which is not followed - ingest that folder itself")
    suffix = suffix_of(path)
    if suffix not in (".json", ".jsonl", ".jsonl.gz") and path.exists() and path.stat().st_size > max_article_bytes:
        raise CorpusError(
            str(path.resolve()),
            f"is {path.stat().st_size / 2**20:.1f} MB, over the {limit_mb} MB article limit "
            "(RAG_MAX_ARTICLE_MB); split it or raise the limit",
        )
    for article in _load_articles(path, skipped):
        size = len(article.text.encode("utf-8"))
        if size > max_article_bytes:
            skipped.append(
                Skipped(article.source_path, f"article {article.article_id} is {size / 2**20:.1f} MB, over the "
                        f"{limit_mb} MB article limit (RAG_MAX_ARTICLE_MB)")
            )
            continue
        yield article


def _load_articles(path: Path, skipped: list[Skipped]) -> Iterator[Article]:
    path = path.resolve()
    suffix = suffix_of(path)
    if suffix not in TEXT_SUFFIXES:
        raise CorpusError(
            str(path), f"unsupported file type {suffix or '(none)'}; use one of {', '.join(TEXT_SUFFIXES)}"
        )
    if suffix in (".jsonl", ".jsonl.gz"):
        for n, line in _iter_lines(path):
            where = f"{path}:{n}"
            try:
                yield _record(path, json.loads(line), where, _file_id(path, f"#{n}"))
            except json.JSONDecodeError as exc:
                skipped.append(Skipped(where, f"invalid JSON ({exc.msg})"))
            except CorpusError as exc:
                skipped.append(Skipped(exc.path, exc.problem))
        return
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CorpusError(str(path), f"is {size // 2**20} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit")
    text = _decode(path, path.read_bytes())
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorpusError(str(path), f"invalid JSON at line {exc.lineno} ({exc.msg})") from exc
        records = data if isinstance(data, list) else [data]
        for n, rec in enumerate(records):
            try:
                yield _record(path, rec, f"{path}[{n}]", _file_id(path, f"#{n}"))
            except CorpusError as exc:
                skipped.append(Skipped(exc.path, exc.problem))
    elif suffix in (".md", ".markdown"):
        yield _markdown(path, text)
    elif suffix in (".html", ".htm"):
        yield _html(path, text)
    else:
        yield make_article(_file_id(path), text, {}, str(path))
