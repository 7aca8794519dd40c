"""What every page shares: the one service per process, the sidebar, the chosen mode and k."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, timedelta
from typing import Any

import streamlit as st

from rag import RagError, RagService, Settings

log = logging.getLogger("rag.ui")

MODE_KEY = "answer_mode"
K_KEY = "top_k"
DATES_ON_KEY = "date_filter_on"
DATES_KEY = "date_range"
MAX_K = 20


def settings() -> Settings:
    """Settings from the environment (and .env), read on every run: cheap, and tests can vary them."""
    return Settings()  # type: ignore[call-arg]  # fields come from the environment


def _settings_key(s: Settings) -> str:
    secret = s.openai_api_key.get_secret_value() if s.openai_api_key is not None else ""
    return s.model_dump_json() + hashlib.sha256(secret.encode()).hexdigest()


@st.cache_resource(show_spinner=False)
def _build_service(key: str, _settings: Settings) -> RagService:
    """One service per distinct configuration, shared by every browser session of this process."""
    return RagService(_settings)


def get_service() -> RagService:
    s = settings()
    return _build_service(_settings_key(s), s)


def show_error(exc: BaseException) -> None:
    """A RagError's message, or a one-line note for anything unexpected (never a traceback)."""
    if isinstance(exc, RagError):
        st.error(exc.user_message)
    else:
        log.exception("unexpected error in the UI", exc_info=exc)
        st.error(f"Something unexpected went wrong ({exc.__class__.__name__}) - see the server log, and try again.")


def mode_options(s: Settings) -> list[str]:
    return ["extractive", "llm"] if s.llm_configured else ["extractive"]


def current_mode() -> str:
    s = settings()
    mode = st.session_state.get(MODE_KEY) or s.effective_mode
    return mode if mode in mode_options(s) else "extractive"


def current_k() -> int:
    return int(st.session_state.get(K_KEY) or settings().top_k)


def current_dates() -> tuple[date | None, date | None]:
    """(since, until) from the sidebar's date range, or (None, None) when it is off or half-picked."""
    if not st.session_state.get(DATES_ON_KEY):
        return None, None
    value = st.session_state.get(DATES_KEY)
    if isinstance(value, date):
        return value, value
    picked: tuple[date, ...] = tuple(value or ())
    if len(picked) != 2:  # the picker holds one end while the user chooses the other
        return None, None
    return picked[0], picked[1]


def _date_range_input() -> None:
    st.toggle("Only articles published between", key=DATES_ON_KEY)
    if st.session_state.get(DATES_ON_KEY):
        today = date.today()
        st.session_state.setdefault(DATES_KEY, (today - timedelta(days=365), today))
        st.date_input("Published between", key=DATES_KEY, format="YYYY-MM-DD", label_visibility="collapsed")
        st.caption("Undated articles are left out while this is on.")


def sidebar() -> dict[str, Any]:
    """Answer mode, k, and what the index holds; returns the service's stats ({} on error)."""
    s = settings()
    options = mode_options(s)
    if st.session_state.get(MODE_KEY) not in options:
        st.session_state[MODE_KEY] = current_mode()
    labels = {"extractive": "Offline (extractive)", "llm": f"LLM ({s.llm_model})"}
    with st.sidebar:
        st.radio("Answer mode", options, key=MODE_KEY, format_func=lambda m: labels[m])
        if not s.llm_configured:
            st.caption("LLM mode: set RAG_LLM_BASE_URL or OPENAI_API_KEY and restart.")
        if K_KEY not in st.session_state:
            st.session_state[K_KEY] = min(s.top_k, MAX_K)
        st.slider("Passages to retrieve (k)", 1, MAX_K, key=K_KEY)
        _date_range_input()
        stats: dict[str, Any] = {}
        try:
            stats = get_service().stats()
        except Exception as exc:  # an unreachable or corrupt index: say so, keep the app up
            show_error(exc)
        if stats:
            c1, c2 = st.columns(2)
            c1.metric("Articles", stats.get("articles", 0))
            c2.metric("Chunks", stats.get("chunks", 0))
        st.caption("Index")
        st.text(s.index_location)
    return stats
