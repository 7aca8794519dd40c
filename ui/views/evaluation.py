"""The evaluation page (registered by ui/app.py)."""

from __future__ import annotations

from ui.evaluation import page

page()
