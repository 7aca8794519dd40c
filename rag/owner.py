"""One process owns an embedded index: an exclusive lock on the data dir, naming its holder to others."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rag.errors import IndexBusyError

LOCK_NAME = "owner.lock"


@dataclass
class _Held:
    fd: int
    users: int


# One lock per data dir per process: flock locks belong to an open file, so two services of one
# process on the same dir would otherwise lock each other out.
_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(info.get("since", 0))))
    return f"process {info['pid']} (`{info.get('command', '?')}`, since {since})"


def acquire(data_dir: Path, wait_seconds: float = 2.0) -> Path:
    """Take (or share, within this process) the owner lock of data_dir; IndexBusyError if another holds it.

    The wait lets short CLI commands run one after another; a long-running owner (the app, `rag serve`)
    keeps the lock until it exits, and the OS releases it even when the process is killed.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = (data_dir / LOCK_NAME).resolve()
    with _guard:
        held = _held.get(path)
        if held is not None:
            held.users += 1
            return path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise IndexBusyError(
                        f"The index in {data_dir} is in use by {_describe(path)}. Only one process may open an "
                        "embedded index: stop that process, add articles through it (the app's Library page or "
                        "the API), or run a Chroma server (RAG_CHROMA_HOST) for concurrent access."
                    ) from None
                time.sleep(0.1)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "python"
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
        _held[path] = _Held(fd, 1)
        return path


def release(path: Path) -> None:
    """Give back one use of a lock taken by acquire(); the last one unlocks the data dir."""
    with _guard:
        held = _held.get(path)
        if held is None:
            return
        held.users -= 1
        if held.users > 0:
            return
        del _held[path]
        os.ftruncate(held.fd, 0)
        fcntl.flock(held.fd, fcntl.LOCK_UN)
        os.close(held.fd)
