"""The library page: what is indexed, searchable; uploads ingested with progress; deletion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from rag import ALLOWED_SUFFIXES, IngestReport, RagService, Settings, UploadRejected, count_articles, iso_date
from rag import save_upload as _save_upload
from rag import uploads_dir as _uploads_dir
from ui.common import get_service, settings, show_error
from ui.render import md

UPLOAD_TYPES = [s.lstrip(".") for s in ALLOWED_SUFFIXES]
UPLOADER_KEY = "uploader_round"


def uploads_dir(s: Settings) -> Path:
    return _uploads_dir(s.data_dir)


def save_upload(s: Settings, name: str, data: bytes, replace: bool = False) -> Path:
    return _save_upload(s.data_dir, name, data, s.max_upload_mb, replace=replace)


@dataclass
class UploadResult:
    saved: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reports: list[IngestReport] = field(default_factory=list)


def ingest_uploads(
    svc: RagService, files: list[tuple[str, bytes]], on_progress: Any = None, replace: bool = False
) -> UploadResult:
    """Save each file, ingest it, and collect one message per problem (naming the file).

    A file whose cleaned name is taken by a different upload is kept beside it unless replace is set."""
    s = svc.settings
    out = UploadResult()
    for name, data in files:
        try:
            out.saved.append(save_upload(s, name, data, replace=replace))
        except UploadRejected as exc:
            out.errors.append(f"{exc.name}: {exc.problem}")
    total = max(1, count_articles(out.saved)) if out.saved else 1
    done_before = 0
    for path in out.saved:
        n_here = count_articles([path])

        def progress(done: int, chunks: int, base: int = done_before, name: str = path.name) -> None:
            if on_progress:
                on_progress(min(1.0, (base + done) / total), f"{name}: {base + done}/{total} articles, {chunks} chunks")

        report = svc.ingest([path], progress=progress)
        out.reports.append(report)
        for sk in report.skipped:
            out.errors.append(f"{Path(sk.path).name}: {sk.reason}")
        if not (report.added or report.updated or report.unchanged):
            path.unlink(missing_ok=True)  # nothing usable in it: do not keep it
        done_before += n_here
    return out


def _articles_frame(articles: list[dict[str, Any]], query: str) -> pd.DataFrame:
    q = query.strip().lower()
    rows = []
    for a in articles:
        title = str(a.get("title", ""))
        hay = " ".join(str(a.get(k, "")) for k in ("title", "source", "published", "url", "author")).lower()
        if q and q not in hay:
            continue
        rows.append(
            {
                "title": title + (" (derived)" if a.get("title_derived") else ""),
                "source": str(a.get("source", "")),
                "published": iso_date(a.get("published")) or "undated",
                "chunks": int(a.get("chunks", 0) or 0),
                "article_id": str(a.get("article_id", "")),
            }
        )
    rows.sort(key=lambda r: (r["published"] != "undated", r["published"], r["title"]), reverse=True)
    return pd.DataFrame(rows, columns=["title", "source", "published", "chunks", "article_id"])


def articles_per_week(articles: list[dict[str, Any]]) -> tuple[pd.Series, int]:
    """Dated articles counted per week (weeks start on Monday, empty weeks included) and how many are undated."""
    days = [iso_date(a.get("published")) for a in articles]
    dated = pd.to_datetime(pd.Series([d for d in days if d], dtype="object"))
    undated = len(days) - len(dated)
    if dated.empty:
        return pd.Series(dtype="int64", name="articles"), undated
    weeks = (dated - pd.to_timedelta(dated.dt.weekday, unit="D")).dt.normalize()
    counts = weeks.value_counts().sort_index()
    full = pd.date_range(counts.index.min(), counts.index.max(), freq="7D")
    series = counts.reindex(full, fill_value=0).rename("articles")
    series.index = series.index.date
    series.index.name = "week of"
    return series, undated


def _timeline(articles: list[dict[str, Any]]) -> None:
    weekly, undated = articles_per_week(articles)
    if weekly.empty:
        if articles:
            st.caption(f"No article has a publication date ({undated} undated).")
        return
    dated = [d for d in (iso_date(a.get("published")) for a in articles) if d]
    note = f"; {undated} undated (left out by date filters)" if undated else ""
    st.caption(f"Published {min(dated)} to {max(dated)}{note}")
    st.bar_chart(weekly, height=160, x_label="week of", y_label="articles")


def _upload_section(svc: RagService, s: Settings) -> None:
    st.subheader("Add articles")
    round_ = st.session_state.setdefault(UPLOADER_KEY, 0)
    files = st.file_uploader(
        f"Files (.txt, .md, .html, .json, .jsonl; up to {s.max_upload_mb} MB each)",
        type=UPLOAD_TYPES, accept_multiple_files=True, key=f"uploader-{round_}", max_upload_size=s.max_upload_mb,
    )
    replace = st.checkbox(
        "Replace uploads of the same name (update those articles)",
        help="Off: a different file whose name is already taken is kept beside it as a new article.",
    )
    if not files or not st.button("Ingest", type="primary", icon=":material/upload:"):
        return
    bar = st.progress(0.0, text="Saving files…")
    try:
        result = ingest_uploads(
            svc,
            [(f.name, f.getvalue()) for f in files],
            on_progress=lambda frac, text: bar.progress(frac, text=text),
            replace=replace,
        )
    except Exception as exc:
        bar.empty()
        show_error(exc)
        return
    bar.progress(1.0, text="Done")
    added = sum(r.added for r in result.reports)
    updated = sum(r.updated for r in result.reports)
    unchanged = sum(r.unchanged for r in result.reports)
    st.session_state["library_notice"] = (
        f"Ingested {len(result.saved)} file(s): {added} article(s) added, "
        f"{updated} updated, {unchanged} unchanged."
    )
    st.session_state["library_errors"] = result.errors
    st.session_state[UPLOADER_KEY] = round_ + 1
    st.rerun()


def _delete_section(svc: RagService, frame: pd.DataFrame, s: Settings) -> None:
    if frame.empty:
        return
    st.subheader("Delete an article")
    labels = dict(zip(frame["article_id"], frame["title"], strict=True))
    choice = st.selectbox("Article", list(labels), format_func=lambda aid: labels.get(aid, aid), key="delete_choice")
    if choice and st.button("Delete", icon=":material/delete:", key="delete_button"):
        try:
            meta = next((a for a in svc.list_articles() if a.get("article_id") == choice), {})
            n = svc.delete_article(str(choice))
        except Exception as exc:
            show_error(exc)
            return
        src = Path(str(meta.get("source_path", "")))
        if src.name and src.resolve().parent == uploads_dir(s).resolve():
            src.unlink(missing_ok=True)  # an uploaded file goes with its article
        st.session_state["library_notice"] = f"Deleted “{labels.get(choice, choice)}” ({n} chunks left the index)."
        st.session_state["library_errors"] = []
        st.rerun()


def page() -> None:
    st.title("Library")
    s = settings()
    if notice := st.session_state.pop("library_notice", None):
        st.success(md(notice))
    for err in st.session_state.pop("library_errors", []):
        st.error(md(err))
    try:
        svc = get_service()
        articles = svc.list_articles()
    except Exception as exc:
        show_error(exc)
        return
    st.caption(f"{len(articles)} article(s) in the index")
    st.text(s.index_location)
    _timeline(articles)
    query = st.text_input("Search titles, sources, dates", key="library_query", placeholder="e.g. Ukraine")
    frame = _articles_frame(articles, query)
    if articles and frame.empty:
        st.info("No article matches that search.")
    elif not articles:
        st.info("The index is empty: add files below, or run `rag ingest corpus/`.")
    if not frame.empty:
        st.dataframe(frame.drop(columns=["article_id"]), hide_index=True, width="stretch")
    _upload_section(svc, s)
    _delete_section(svc, frame, s)
