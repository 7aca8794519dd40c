"""The chat page (registered by ui/app.py)."""

from __future__ import annotations

from ui.chat import page

page()
