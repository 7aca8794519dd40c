"""The library page (registered by ui/app.py)."""

from __future__ import annotations

from ui.library import page

page()
