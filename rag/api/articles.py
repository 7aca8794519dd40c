"""Articles over the API: list (paged, filtered), one article, multipart upload (admin), delete (admin)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag import RagService
from rag.api.deps import require, service
from rag.api.errors import ApiError
from rag.api.schemas import ERRORS
from rag.uploads import ALLOWED_SUFFIXES, UploadRejected, save_upload, uploads_dir

router = APIRouter(tags=["articles"])
PATH = "/v1/articles"
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the files themselves


def upload_body_limit(max_upload_mb: float) -> int:
    """The largest multipart body POST /v1/articles accepts: RAG_MAX_UPLOAD_MB of files in one request."""
    return int(max_upload_mb * 2**20) + MULTIPART_OVERHEAD


# -- response models (the OpenAPI schema) ------------------------------------------------
class ArticleMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    article_id: str
    title: str = ""
    title_derived: bool = False
    source: str = ""
    published: str | None = Field(None, description="ISO date or null (never guessed)")
    url: str = ""
    file: str = Field("", description="the name of the file it was read from")
    uploaded: bool = Field(False, description="the file lives in the API's uploads folder")


class ArticlePage(BaseModel):
    data: list[ArticleMeta]
    total: int = Field(description="articles matching q (all when q is empty)")
    limit: int
    offset: int


class ArticleOut(ArticleMeta):
    text: str


class UploadedFile(BaseModel):
    name: str = Field(description="the file name as sent")
    saved_as: str | None = Field(None, description="its safe name in the uploads folder (null when rejected)")
    status: Literal["added", "updated", "unchanged", "skipped", "rejected"]
    reason: str | None = Field(None, description="why it was skipped or rejected")
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    articles: list[ArticleMeta] = Field(default_factory=list, description="the articles read from it")


class UploadResult(BaseModel):
    files: list[UploadedFile]
    added: int
    updated: int
    unchanged: int
    skipped: int = Field(description="files rejected or skipped (see each file's reason)")


class Deleted(BaseModel):
    article_id: str
    chunks: int = Field(description="chunks that left the index")
    file_deleted: bool = Field(description="its uploaded file was removed too")
    note: str = ""


# -- helpers ----------------------------------------------------------------------------
def _is_upload(svc: RagService, source_path: str) -> bool:
    if not source_path:
        return False
    return Path(source_path).resolve().parent == uploads_dir(svc.settings.data_dir).resolve()


def _public(svc: RagService, meta: dict[str, Any]) -> dict[str, Any]:
    """Registry metadata for a client: the server's file path becomes a file name."""
    out = {k: v for k, v in meta.items() if k not in ("source_path", "content_hash", "published_day")}
    src = str(meta.get("source_path", "") or "")
    out["published"] = meta.get("published") or None
    out.update(file=Path(src).name if src else "", uploaded=_is_upload(svc, src))
    return out


def _matches(meta: dict[str, Any], terms: list[str]) -> bool:
    hay = " ".join(str(meta.get(k, "") or "") for k in ("title", "source", "published")).lower()
    return all(t in hay for t in terms)


def list_page(svc: RagService, q: str, limit: int, offset: int) -> dict[str, Any]:
    terms = q.lower().split()
    rows = [a for a in svc.list_articles() if _matches(a, terms)]
    rows.sort(key=lambda a: (bool(a.get("published")), str(a.get("published") or ""), str(a.get("title", ""))),
              reverse=True)  # newest first, undated last
    page = [_public(svc, a) for a in rows[offset : offset + limit]]
    return {"data": page, "total": len(rows), "limit": limit, "offset": offset}


def ingest_uploads(svc: RagService, items: list[tuple[str, bytes]], replace: bool) -> dict[str, Any]:
    """Save each file by the upload rules, ingest it, and say per file what happened and why."""
    s = svc.settings
    folder = uploads_dir(s.data_dir)
    files: list[dict[str, Any]] = []
    for name, data in items:
        before = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        try:
            path = save_upload(s.data_dir, name, data, s.max_upload_mb, replace=replace)
        except UploadRejected as exc:
            files.append({"name": name, "status": "rejected", "reason": exc.problem})
            continue
        report = svc.ingest([path])  # the article records are written last: readers never see half of it
        where = str(path.resolve())
        arts = [
            _public(svc, meta)
            for meta in svc.list_articles()
            if str(Path(str(meta.get("source_path", "") or "/")).resolve()) == where
        ]
        entry: dict[str, Any] = {
            "name": name,
            "saved_as": path.name,
            "added": report.added,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "articles": arts,
        }
        if report.skipped:
            entry["reason"] = "; ".join(sk.reason for sk in report.skipped)
        if report.added or report.updated or report.unchanged:
            entry["status"] = "added" if report.added else "updated" if report.updated else "unchanged"
        else:
            entry["status"] = "skipped"
            entry["reason"] = entry.get("reason") or "no article in the file"
            if path.name not in before:
                path.unlink(missing_ok=True)  # nothing usable in it: do not keep it
                entry["saved_as"] = None
        files.append(entry)
    totals = {k: sum(f.get(k, 0) for f in files) for k in ("added", "updated", "unchanged")}
    return {"files": files, **totals, "skipped": sum(f["status"] in ("skipped", "rejected") for f in files)}


def delete(svc: RagService, article_id: str) -> dict[str, Any]:
    article = svc.get_article(article_id)
    if article is None:
        raise _not_found(article_id)
    n = svc.delete_article(article_id)
    src, deleted, note = article.source_path, False, ""
    if _is_upload(svc, src):
        others = [a for a in svc.list_articles() if a.get("source_path") == src]
        if others:
            note = f"its file {Path(src).name} is kept: it holds {len(others)} other article(s)"
        else:
            Path(src).unlink(missing_ok=True)
            deleted = True
    elif src:
        note = "its file is not an upload of this instance and is left alone; an ingest of its folder adds it again"
    return {"article_id": article_id, "chunks": n, "file_deleted": deleted, "note": note}


def _not_found(article_id: str) -> ApiError:
    return ApiError(404, f"No article {article_id!r} in the index - list them with GET /v1/articles.",
                    code="article_not_found")


# -- routes -----------------------------------------------------------------------------
@router.get(PATH, response_model=ArticlePage, responses=ERRORS, dependencies=[Depends(require("read"))])
async def list_articles(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="articles per page")] = 100,
    offset: Annotated[int, Query(ge=0, description="articles to skip")] = 0,
    q: Annotated[str, Query(max_length=200, description="words that must all occur in title, source or date")] = "",
) -> dict[str, Any]:
    """The indexed articles, newest first (undated last), `limit` at a time from `offset`."""
    return await run_in_threadpool(list_page, service(request), q, limit, offset)


@router.get(
    PATH + "/{article_id:path}",
    response_model=ArticleOut,
    responses={**ERRORS, 404: {"description": "no such article"}},
    dependencies=[Depends(require("read"))],
)
async def get_article(request: Request, article_id: str) -> dict[str, Any]:
    """One article: its metadata and full text (citation offsets index into this text)."""
    svc = service(request)
    article = await run_in_threadpool(svc.get_article, article_id)
    if article is None:
        raise _not_found(article_id)
    return {**_public(svc, asdict(article)), "text": article.text}


@router.post(
    PATH,
    response_model=UploadResult,
    responses={**ERRORS, 413: {"description": "the files are over RAG_MAX_UPLOAD_MB"}},
    dependencies=[Depends(require("admin"))],
)
async def upload(
    request: Request,
    file: Annotated[list[UploadFile], File(description=f"one or more of {', '.join(ALLOWED_SUFFIXES)}")],
    replace: Annotated[bool, Form(description="overwrite an upload of the same name (an updated article)")] = False,
) -> dict[str, Any]:
    """Add or update articles from uploaded files (admin). A different file whose name is taken is kept
    beside the other; `replace=true` overwrites it. 400 when no file gave an article (each reason named)."""
    items = [(f.filename or "upload.txt", await f.read()) for f in file]
    result = await run_in_threadpool(ingest_uploads, service(request), items, replace)
    if not (result["added"] or result["updated"] or result["unchanged"]):
        problems = "; ".join(f"{f['name']}: {f['reason']}" for f in result["files"])
        raise ApiError(400, f"No article was ingested - {problems}.", code="nothing_ingested")
    return result


@router.delete(
    PATH + "/{article_id:path}",
    response_model=Deleted,
    responses={**ERRORS, 404: {"description": "no such article"}},
    dependencies=[Depends(require("admin"))],
)
async def delete_article(request: Request, article_id: str) -> dict[str, Any]:
    """Remove an article from the index (admin); its uploaded file goes with it."""
    return await run_in_threadpool(delete, service(request), article_id)
