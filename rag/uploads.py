"""Uploaded files saved under the data dir: safe names, size and type checks, never one over another."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from rag.errors import CorpusError

ALLOWED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
MAX_NAME_CHARS = 120


class UploadRejected(CorpusError):
    """A file refused before it is written (its name and the problem)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name = name


def uploads_dir(data_dir: Path) -> Path:
    return data_dir / "uploads"


def sanitize_filename(name: str) -> str:
    """A safe file name: no directories, ASCII letters, digits, '.', '-', '_' only; never hidden."""
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")
    base = re.sub(r"\.{2,}", ".", base)
    if len(base) > MAX_NAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: MAX_NAME_CHARS - len(ext) - 1] + dot + ext) if dot and len(ext) <= 8 else base[:MAX_NAME_CHARS]
    return base or "upload.txt"


def save_upload(data_dir: Path, name: str, data: bytes, max_mb: float, replace: bool = False) -> Path:
    """Check size and type, then write under data_dir/uploads (and nowhere else).

    Two different files whose cleaned names collide are both kept: the second gets a suffix made from its
    content hash (`evil.txt`, then `evil-3f9a1c2b.txt`), so an upload never silently replaces another
    article. The same bytes uploaded again land on the same file (an unchanged article). With replace,
    a file of the same cleaned name is overwritten on purpose (an updated article).
    """
    if len(data) > max_mb * 1024 * 1024:
        raise UploadRejected(name, f"{len(data) / 1e6:.1f} MB is over the {max_mb:g} MB limit (RAG_MAX_UPLOAD_MB)")
    if not data.strip():
        raise UploadRejected(name, "the file is empty")
    safe = sanitize_filename(name)
    if not safe.lower().endswith(ALLOWED_SUFFIXES):
        raise UploadRejected(name, f"unsupported type - upload {', '.join(ALLOWED_SUFFIXES)} files")
    root = uploads_dir(data_dir).resolve()
    target = (root / safe).resolve()
    if target.parent != root:  # sanitize_filename makes this impossible; keep the guard anyway
        raise UploadRejected(name, "the file name is not allowed")
    if target.exists() and not replace and target.read_bytes() != data:
        stem, dot, ext = safe.rpartition(".")
        target = root / f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{dot}{ext}"
    root.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")  # hidden, so an ingest of the folder never reads it
    tmp.write_bytes(data)
    tmp.replace(target)
    return target
