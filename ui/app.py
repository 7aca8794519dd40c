"""Streamlit entry point (`streamlit run ui/app.py`): sidebar, then the Chat, Library or Evaluation page."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `streamlit run` puts ui/ on the path, not the repo root
    sys.path.insert(0, _ROOT)
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import streamlit as st  # noqa: E402

from ui.common import sidebar  # noqa: E402

st.set_page_config(page_title="Ask the news", page_icon=":material/newspaper:", layout="wide")
_VIEWS = Path(__file__).resolve().parent / "views"
page = st.navigation(
    [
        st.Page(_VIEWS / "chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page(_VIEWS / "library.py", title="Library", icon=":material/library_books:"),
        st.Page(_VIEWS / "evaluation.py", title="Evaluation", icon=":material/monitoring:"),
    ]
)
sidebar()
page.run()
