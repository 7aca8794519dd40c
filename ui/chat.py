"""The chat page: streamed, cited answers; the conversation lives in this session only."""

from __future__ import annotations

from typing import Any

import streamlit as st

from rag import Answer, ModelError, RagError, RagService, record_feedback
from ui import answers
from ui.common import current_dates, current_k, current_mode, get_service, log, settings, show_error
from ui.conversation import Conversation, Exchange, to_json, to_markdown
from ui.render import md

CONV_KEY = "conversation"
PENDING_KEY = "pending_question"


def conversation() -> Conversation:
    if CONV_KEY not in st.session_state:
        st.session_state[CONV_KEY] = Conversation()
    conv: Conversation = st.session_state[CONV_KEY]
    return conv


def _new_conversation() -> None:
    st.session_state[CONV_KEY] = Conversation()


def _retry_offline(exchange_id: str) -> None:
    ex = conversation().find(exchange_id)
    if ex is not None:
        ex.retried = True
        st.session_state[PENDING_KEY] = (ex.question, "extractive")


def _on_feedback(exchange_id: str) -> None:
    conv = conversation()
    ex = conv.find(exchange_id)
    score = st.session_state.get(f"feedback-{exchange_id}")
    if ex is None or ex.answer is None or score is None:
        return
    try:
        record_feedback(settings(), ex.answer, int(score), conversation_id=conv.id)
        st.toast("Thanks - feedback saved.")
    except RagError as exc:
        st.session_state["feedback_error"] = exc.user_message


def _article_count(svc: RagService) -> int | None:
    """How many articles the library holds; None (with the error shown) when the index cannot be read."""
    try:
        return int(svc.stats().get("articles", 0))
    except RagError as exc:  # a broken index is said, never shown as an empty library
        show_error(exc)
        return None


def render_exchange(ex: Exchange, svc: RagService) -> None:
    """A past exchange, replayed exactly as it looked when it was answered."""
    with st.chat_message("user"):
        st.markdown(md(ex.question))
    with st.chat_message("assistant"):
        with st.status(answers.status_label(ex), state="error" if ex.answer is None else "complete"):
            answers.status_body(ex)
        with st.empty().container():  # the same layout as when it was streamed: widgets keep their state
            _body(ex, svc)


def _body(ex: Exchange, svc: RagService) -> None:
    if ex.answer is None:
        st.error(ex.error or "No answer.")
        if ex.model_error and not ex.retried:
            st.button("Answer offline instead", key=f"offline-{ex.id}", on_click=_retry_offline, args=(ex.id,))
        return
    answers.answer_text(ex.answer, lambda: _article_count(svc))
    answers.sources(ex, svc)
    st.feedback("thumbs", key=f"feedback-{ex.id}", on_change=_on_feedback, args=(ex.id,))


def ask(svc: RagService, question: str, mode: str) -> None:
    """Stream one answer: steps into the status block, text as it comes, then the full answer."""
    conv = conversation()
    k = current_k()
    ex = Exchange(question=question, mode=mode)
    with st.chat_message("user"):
        st.markdown(md(question))
    with st.chat_message("assistant"):
        status = st.status(f"Understanding the question and {answers.step_label('retrieve', k)}…")
        slot = st.empty()
        final: dict[str, Answer] = {}

        def pieces() -> Any:
            since, until = current_dates()
            for kind, value in svc.stream(question, history=conv.history, k=k, mode=mode, since=since, until=until):
                if kind == "step":
                    name, ms = value
                    ex.steps.append((str(name), float(ms)))
                    status.write(f"{md(answers.step_label(str(name), k)).capitalize()}: {float(ms):,.0f} ms")
                    status.update(label="Answering…")
                elif kind == "text":
                    yield md(str(value))
                elif kind == "answer":
                    final["answer"] = value

        try:
            with slot.container():
                st.write_stream(pieces())
        except Exception as exc:
            slot.empty()
            ex.error = exc.user_message if isinstance(exc, RagError) else None
            ex.model_error = isinstance(exc, ModelError)
            if not isinstance(exc, RagError):
                log.exception("unexpected error while answering", exc_info=exc)
                ex.error = f"Something unexpected went wrong ({exc.__class__.__name__}) - see the server log."
        ex.answer = final.get("answer")
        if ex.answer is None and ex.error is None:
            ex.error = "The pipeline produced no answer - try again."
        conv.exchanges.append(ex)
        with status:
            answers.status_body(ex)
        status.update(label=answers.status_label(ex), state="error" if ex.answer is None else "complete")
        with slot.container():
            _body(ex, svc)


def _toolbar(conv: Conversation) -> None:
    cols = st.columns([1.6, 1.2, 1.2, 3], gap="small")
    cols[0].button("New conversation", on_click=_new_conversation, icon=":material/add_comment:")
    if conv.exchanges:
        cols[1].download_button(
            "Markdown", to_markdown(conv), file_name=f"conversation-{conv.id}.md", mime="text/markdown",
            icon=":material/download:", on_click="ignore",
        )
        cols[2].download_button(
            "JSON", to_json(conv), file_name=f"conversation-{conv.id}.json", mime="application/json",
            icon=":material/download:", on_click="ignore",
        )


def page() -> None:
    st.title("Ask the news")
    conv = conversation()
    toolbar = st.container()  # filled last, so the exports include an answer given in this run
    if msg := st.session_state.pop("feedback_error", None):
        st.error(msg)
    svc = get_service()
    try:
        stats = svc.stats()
    except Exception as exc:  # e.g. an unreachable index: say so; asking will say it again
        show_error(exc)
        stats = {"chunks": -1}
    if not stats.get("chunks"):
        st.info(
            f"The index in {md(str(stats.get('index', '')))} is empty: run `rag ingest corpus/` "
            "(or `make run`), or add files on the Library page."
        )
    for ex in conv.exchanges:
        render_exchange(ex, svc)
    s = settings()
    typed = st.chat_input("Ask a question about the articles", max_chars=s.max_question_chars)
    pending = st.session_state.pop(PENDING_KEY, None)
    if pending:
        ask(svc, pending[0], pending[1])
    elif typed:
        ask(svc, str(typed), current_mode())
    with toolbar:
        _toolbar(conv)
