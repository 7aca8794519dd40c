"""`rag ingest --watch DIR`: keep a folder indexed as its files appear, change and go (one log line each)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from rag.errors import RagError, RagIndexError
from rag.indexer import IngestReport
from rag.ingest import TEXT_SUFFIXES, suffix_of
from rag.service import RagService

log = logging.getLogger(__name__)

LOCK_NAME = "watch.lock"
DEBOUNCE_MS = 800  # changes within this window are handled together (a file being copied settles)


def watched(path: Path, root: Path) -> bool:
    """A file ingest would read: a supported suffix, not hidden (nor under a hidden folder)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    return not any(p.startswith(".") for p in parts) and suffix_of(path) in TEXT_SUFFIXES


def _summary(report: IngestReport) -> str:
    bits = [f"{n} {what}" for n, what in ((report.added, "added"), (report.updated, "updated"),
                                          (report.removed, "removed")) if n]
    bits.append(f"{report.chunks_added} chunks")
    if report.undated:
        bits.append(f"{len(report.undated)} undated")
    return ", ".join(bits) if (report.added or report.updated or report.removed) else "unchanged"


class Watcher:
    """Ingests one change at a time in this process; a second watcher of the same data dir is refused."""

    def __init__(self, service: RagService, root: Path) -> None:
        self.service = service
        self.root = root.resolve()

    def handle(self, path: Path, gone: bool) -> str:
        """Apply one change and return its log line; a bad file is reported, never raised."""
        name = str(path)
        try:
            if gone or not path.is_file():
                n = self.service.remove_source(path)
                return f"removed {name} ({n} article(s) left the index)"
            report = self.service.ingest([path], sync=True)
        except RagError as exc:
            return f"failed {name}: {exc.user_message}"
        except Exception as exc:  # a watcher outlives one bad file
            log.debug("watch: %s failed", name, exc_info=exc)
            return f"failed {name}: unexpected {exc.__class__.__name__} ({str(exc)[:120]})"
        line = f"ingested {name}: {_summary(report)}"
        for s in report.skipped:
            line += f"; skipped {s.path}: {s.reason}"
        for s in report.undated:
            line += f"; {s.reason}"
        return line

    def run(self, stop: threading.Event | None = None, on_ready: Callable[[], None] | None = None) -> None:
        """Catch up with the folder (new, changed and deleted files), then follow it until stop is set."""
        from filelock import FileLock, Timeout
        from watchfiles import Change, watch

        if not self.root.is_dir():
            raise RagIndexError(f"{self.root} is not a folder - `rag ingest --watch` needs a directory to watch.")
        settings = self.service.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(settings.data_dir / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RagIndexError(
                f"Another `rag ingest --watch` already keeps {settings.index_location} up to date - stop it first."
            ) from None
        try:
            report = self.service.ingest([self.root], sync=True)
            log.info("watching %s: %s (%d skipped)", self.root, _summary(report), len(report.skipped))
            if on_ready:
                on_ready()
            for changes in watch(
                self.root,
                watch_filter=lambda _change, p: watched(Path(p), self.root),
                debounce=DEBOUNCE_MS,
                stop_event=stop,
                raise_interrupt=True,
            ):
                latest: dict[Path, bool] = {}
                for change, p in changes:  # the last event of a path wins ("added then deleted" is gone)
                    latest[Path(p)] = change == Change.deleted
                for path, gone in sorted(latest.items()):
                    log.info(self.handle(path, gone))
        finally:
            lock.release()
