"""How articles and chunks are laid out as Chroma records (metadata, packed sentence vectors) and read back."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from rag.dates import day_number
from rag.syndication import signature
from rag.types import Article, Chunk, Passage

ARTICLE_FIELDS = (
    "title", "title_derived", "source", "published", "url", "author", "place", "source_path", "content_hash"
)


def pack(vecs: np.ndarray) -> str:
    """Sentence vectors as base64 int8 (a chunk's metadata holds them)."""
    return base64.b64encode(np.clip(np.round(vecs * 127), -127, 127).astype(np.int8).tobytes()).decode()


def unpack(s: str, dim: int) -> np.ndarray:
    arr = np.frombuffer(base64.b64decode(s), dtype=np.int8).astype(np.float32) / 127.0
    return arr.reshape(-1, dim)


def header_problem(built: str, wanted: str) -> str | None:
    """Why chunk vectors read with header `built` cannot serve settings that read them with `wanted` (None: they
    can). Headers: "none", "title" (RAG_EMBED_TITLE_HEADER) or "rebuilding" (a `rag ingest --rebuild` under way)."""
    if built == wanted:
        return None
    if built == "rebuilding":
        return "is being re-embedded by `rag ingest --rebuild`, or that run was interrupted - run it again."
    if built not in ("none", "title"):
        return (f"was embedded with a chunk header this version does not know ({built!r}) - upgrade the app, or run "
                "`rag ingest --rebuild` to re-embed it.")
    said = "with" if built == "title" else "without"
    return (f"was embedded {said} article-title chunk headers, but RAG_EMBED_TITLE_HEADER is {wanted == 'title'} - "
            f"run `rag ingest --rebuild` to re-embed it, or set RAG_EMBED_TITLE_HEADER={built == 'title'}.")


def where_in(field: str, values: Sequence[str]) -> dict[str, Any]:
    """A Chroma filter matching any of `values` (at least one) in `field`."""
    return {field: {"$in": list(values)}} if len(values) > 1 else {field: values[0]}


def article_meta(article: Article) -> dict[str, Any]:
    meta = {k: v for k, v in asdict(article).items() if k in ARTICLE_FIELDS}
    meta["published_day"] = day_number(article.published)  # YYYYMMDD int for $gte/$lte; 0 when undated
    return meta


def dated(meta: dict[str, Any], article: Article) -> dict[str, Any]:
    """A chunk or registry record's metadata with the article's published / published_day."""
    return {**meta, "published": article.published, "published_day": day_number(article.published)}


def chunk_metas(article: Article, chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """The metadata of an article's chunks, without their packed sentence vectors ("svec")."""
    base = article_meta(article)
    return [
        {
            **base,
            "article_id": article.article_id,
            "index": c.index,
            "start": c.start,
            "end": c.end,
            "sents": json.dumps([list(s) for s in c.sentences]),
            "dup_of": article.article_id,  # its own cluster until rag.syndication.refresh runs
            "dup_n": 1,
        }
        for c in chunks
    ]


def registry_meta(article: Article, n_chunks: int) -> dict[str, Any]:
    """An article's registry record: its fields, chunk count, MinHash signature and (its own) cluster."""
    return {
        **article_meta(article),
        "chunks": n_chunks,
        "minhash": signature(article.text),
        "dup_of": article.article_id,
        "dup_n": 1,
    }


def to_article(article_id: str, text: str, meta: dict[str, Any]) -> Article:
    return Article(article_id=article_id, text=text, **{k: meta.get(k, "") for k in ARTICLE_FIELDS})


def to_passages(ids: list[str], docs: list[str], metas: list[dict[str, Any]], dimension: int) -> list[Passage]:
    out = []
    for cid, doc, meta in zip(ids, docs, metas, strict=True):
        svec = meta.get("svec") or ""
        out.append(
            Passage(
                chunk_id=cid,
                article_id=str(meta["article_id"]),
                text=doc,
                start=int(meta["start"]),
                end=int(meta["end"]),
                sentences=[tuple(s) for s in json.loads(meta.get("sents") or "[]")],  # type: ignore[misc]
                metadata={k: v for k, v in meta.items() if k not in ("svec", "sents")},
                sentence_vectors=unpack(svec, dimension) if svec else None,
            )
        )
    return out


def is_current(chunk_id: str, content_hash: str | None) -> bool:
    """Whether a chunk is of the article record with this content hash (None: no record), not a stale one.

    Chunk ids carry the content hash (rag.chunking); an empty hash (an older record) matches any chunk.
    """
    parts = chunk_id.rsplit(":", 2)
    return content_hash is not None and (not content_hash or len(parts) < 3 or parts[1] == content_hash[:10])
