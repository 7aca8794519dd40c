"""Handing freed heap memory back to the operating system after Chroma's large reads and writes.

Chroma's Rust core allocates through the C library's malloc on its own threads. When a page of records has
been read or a batch written, that memory is freed but glibc keeps it in its per-thread arenas, so the
process's resident size only grows: reading every article's metadata in a 5,386-article index left about
200 MiB resident, and reading every chunk's text about 300 MiB more (docs/operations.md). `malloc_trim(0)`
returns the free pages of every arena. Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return freed heap pages to the OS (glibc only); whether anything could be asked."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
