"""How one exchange looks: steps and timings, the answer, its sources, feedback."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from rag import Answer, Citation, Passage, RagService, Sentence, also_line
from ui.common import show_error
from ui.conversation import Exchange
from ui.render import has_marker, highlighted_html, md, quote_spans

STEP_LABELS = {
    "condense": "understanding the question",
    "retrieve": "retrieving passages",
    "gate": "checking the passages answer it",
    "answer": "answering",
    "total": "total",
}
UNSUPPORTED = "⚠️"
UNCERTAIN = "❔"


def step_label(name: str, k: int | None = None) -> str:
    if name == "retrieve" and k:
        return f"retrieving {k} passages"
    return STEP_LABELS.get(name, name.replace("_", " "))


def status_label(ex: Exchange) -> str:
    if ex.answer is None:
        return "Could not answer"
    total = ex.answer.timings_ms.get("total")
    took = f" in {total:,.0f} ms" if total is not None else ""
    return ("No answer in the articles" if ex.answer.refused else "Answered") + took


def status_body(ex: Exchange) -> None:
    """Inside the status block: the standalone question and the timing of each step."""
    a = ex.answer
    if a is None:
        return
    st.caption("Question as searched (with the conversation)")
    st.text(a.standalone_question)
    k = len(a.contexts)
    rows = [
        f"- {md(step_label(name, k))}: {ms:,.0f} ms"
        for name, ms in a.timings_ms.items()
        if not name.startswith("retrieve_")
    ]
    if rows:
        st.markdown("\n".join(rows))
    st.caption(f"mode: {md(a.mode)} · passages retrieved: {k}")


def _mark(verdict: str) -> str:
    return "" if verdict == "supported" else UNCERTAIN if verdict == "uncertain" else UNSUPPORTED


def answer_groups(a: Answer) -> list[tuple[str, list[Sentence]]]:
    """Consecutive answer sentences citing one article, each group labelled with its source and date."""
    by_n = {c.n: c for c in a.citations}
    groups: list[tuple[str, str, list[Sentence]]] = []
    for s in a.sentences:
        c = by_n.get(s.citations[0]) if s.citations else None
        key = c.article_id if c else ""
        label = f"{c.source or c.title or 'unknown source'}, {c.published or 'undated'}" if c else ""
        if groups and groups[-1][0] == key:
            groups[-1][2].append(s)
        else:
            groups.append((key, label, [s]))
    return [(label, ss) for _, label, ss in groups]


def _answer_markdown(a: Answer) -> str:
    """The answer grouped by article, each group led by its source and date in bold."""
    if not a.sentences:
        return md(a.answer)
    paragraphs = []
    for label, group in answer_groups(a):
        parts = []
        for s in group:
            text = md(s.text)
            if not has_marker(s.text) and s.citations:
                text += " " + " ".join(f"\\[{n}\\]" for n in s.citations)
            mark = _mark(s.verdict) if not s.supported else ""
            parts.append(f"{mark} {text}" if mark else text)
        paragraphs.append((f"**{md(label)}:** " if label else "") + " ".join(parts))
    return "\n\n".join(paragraphs)


def answer_text(a: Answer, article_count: Callable[[], int | None]) -> None:
    """The answer; a refusal looks different and says what the articles do cover."""
    if a.refused:
        st.warning(md(a.answer), icon=":material/search_off:")
        titles = list(dict.fromkeys(p.title for p in a.contexts if p.title))[:5]
        n = article_count()
        if n is not None:
            st.markdown(f"The library holds {n} article{'s' if n != 1 else ''}; see the Library page for the list.")
        if titles:
            st.markdown("Closest articles to your question:\n" + "\n".join(f"- {md(t)}" for t in titles))
        return
    st.markdown(_answer_markdown(a))
    if a.latest_source:
        st.caption(f"Latest source cited: published {a.latest_source}")
    verdicts = {s.verdict for s in a.sentences}
    if "not supported" in verdicts:
        st.caption(f"{UNSUPPORTED} marks a sentence the cited passages may not support: check it against the sources.")
    if "uncertain" in verdicts:
        st.caption(f"{UNCERTAIN} marks a sentence the judge is unsure of (often a paraphrase): check it against the "
                   "sources.")


def _passage_for(c: Citation, contexts: list[Passage]) -> Passage | None:
    return next((p for p in contexts if p.chunk_id == c.chunk_id), None)


def _citation(ex_id: str, c: Citation, a: Answer, svc: RagService) -> None:
    st.markdown(f"**\\[{c.n}\\] {md(c.title or 'Untitled')}**")
    if c.title_derived:
        st.caption("title derived from the article's text (the file had none)")
    meta = " · ".join(x for x in (c.source, c.published or "undated", c.url) if x)
    if meta:
        st.caption(md(meta))
    if c.also_reported_by:  # syndicated copies and updated versions of the same story (the quote is from this one)
        st.caption(md("Also reported by: " + also_line(c.also_reported_by)))
    p = _passage_for(c, a.contexts)
    if c.field:
        st.caption(md(f"from the article's metadata ({c.field}), not its text"))
    if c.field and not c.quote:
        pass
    elif p is not None:
        spans = quote_spans(p.text, p.start, [(c.quote, c.start, c.end)])
        st.html(highlighted_html(p.text, spans))
    else:
        st.html(highlighted_html(c.quote, [(0, len(c.quote))]))
    if st.toggle("Show the whole article", key=f"article-{ex_id}-{c.n}"):
        try:
            article = svc.get_article(c.article_id)
        except Exception as exc:  # the index is unreachable or damaged: say what happened, not "deleted"
            show_error(exc)
            return
        if article is None:
            st.warning("This article is no longer in the index.")
        else:
            spans = quote_spans(article.text, 0, [(c.quote, c.start, c.end)])
            st.html(highlighted_html(article.text, spans, css_class="rag-article", max_height_px=420))


def sources(ex: Exchange, svc: RagService) -> None:
    """Cited passages with the quotes highlighted; the other retrieved passages apart."""
    a = ex.answer
    if a is None:
        return
    if a.citations:
        with st.expander(f"Sources ({len(a.citations)})"):
            for c in a.citations:
                _citation(ex.id, c, a, svc)
    cited = {c.chunk_id for c in a.citations}
    others = [p for p in a.contexts if p.chunk_id not in cited]
    if others:
        with st.expander(f"Also retrieved ({len(others)})"):
            for p in others:
                published = p.metadata.get("published") or "undated"
                meta = " · ".join(str(x) for x in (p.metadata.get("source"), published) if x)
                st.markdown(f"**{md(p.title or 'Untitled')}**" + (f" · {md(meta)}" if meta else ""))
                st.html(highlighted_html(p.text, []))
