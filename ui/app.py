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
from PIL import Image, ImageDraw  # noqa: E402

from ui.common import sidebar  # noqa: E402


def _favicon() -> Image.Image:
    """A small icon drawn here: a `:material/...:` page icon makes the browser fetch it from a font CDN."""
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((2, 4, 29, 27), radius=3, fill=(38, 39, 48, 255))
    for y in (9, 14, 19):
        draw.line((7, y, 24, y), fill=(255, 255, 255, 255), width=2)
    return img


st.set_page_config(page_title="Ask the news", page_icon=_favicon(), layout="wide")
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
