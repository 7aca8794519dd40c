"""Warm /v1/ask over HTTP vs in-process RagService.ask on the seed corpus: `python -m evals.bench_api_latency`."""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from rag import RagService, Settings

REPO = Path(__file__).resolve().parent.parent
QUESTION = "What does Russia want?"


def _timed(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _summary(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"{name:34} median {statistics.median(ms):6.1f} ms   p95 {q[18]:6.1f} ms   (n={len(ms)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data = Path(tmp) / "data"
        svc = RagService(Settings(data_dir=data, corpus_dir=REPO / "corpus", _env_file=None))  # type: ignore[call-arg]
        svc.ingest([REPO / "corpus"])
        local = _timed(lambda: svc.ask(QUESTION), args.runs, args.warmup)
        svc.close()  # the server process becomes the index's one owner

        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
        env.update(RAG_DATA_DIR=str(data), ANONYMIZED_TELEMETRY="False")
        server = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=60) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        print("the server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.2)

                def ask() -> None:
                    client.post("/v1/ask", json={"question": QUESTION}).raise_for_status()

                def chat() -> None:
                    body = {"model": "rag", "messages": [{"role": "user", "content": QUESTION}]}
                    client.post("/v1/chat/completions", json=body).raise_for_status()

                http = _timed(ask, args.runs, args.warmup)
                chat_ms = _timed(chat, args.runs, args.warmup)
        finally:
            server.terminate()
            server.wait(20)
    print(_summary("in-process RagService.ask", local))
    print(_summary("HTTP POST /v1/ask (rag serve)", http))
    print(_summary("HTTP POST /v1/chat/completions", chat_ms))
    ratio = statistics.median(http) / statistics.median(local)
    print(f"/v1/ask median / in-process median = {ratio:.2f} (target: within 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
