"""`rag serve --ui`: the HTTP API and the Streamlit app in one process, so one process owns the index.

The service is built through `ui.common.get_service()` (an st.cache_resource) before Streamlit starts,
and the API is served on a thread from that same object; the app's pages then get it from the same
cache. Streamlit keeps the main thread (and the signals); the API stops when it stops.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run as a script: put the repo root on the path, as ui/app.py does
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag import RagError, RagService  # noqa: E402

APP = _ROOT / "ui" / "app.py"


def hosted_service() -> RagService:
    """The app's cached service, built outside a Streamlit session (its "no ScriptRunContext" note is muted)."""
    from ui.common import get_service

    noisy = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        return get_service()
    finally:
        noisy.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rag serve --ui", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--ui-host", default="127.0.0.1")
    p.add_argument("--ui-port", type=int, default=8501)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)

    from rag.api import build_server, start_in_thread, stop

    try:
        svc = hosted_service()
        server = build_server(svc, args.host, args.port)
        thread = start_in_thread(server)
    except RagError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"API on http://{args.host}:{args.port}, app on http://{args.ui_host}:{args.ui_port}", file=sys.stderr)
    from streamlit.web import cli as stcli

    sys.argv = [
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.address",
        args.ui_host,
        "--server.port",
        str(args.ui_port),
        "--browser.gatherUsageStats",
        "false",
    ]
    try:
        stcli.main()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    finally:
        stop(server, thread)
    return 0


if __name__ == "__main__":
    sys.exit(main())
