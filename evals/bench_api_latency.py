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


def _interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Each run times every function once, in turn, so that load from other work hits them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t) * 1000)
    return out


def _wait_ready(client: httpx.Client, server: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if client.get("/readyz").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _callers(client: httpx.Client) -> tuple[Callable[[], None], Callable[[], None]]:
    def ask() -> None:
        client.post("/v1/ask", json={"question": QUESTION}).raise_for_status()

    def chat() -> None:
        body = {"model": "rag", "messages": [{"role": "user", "content": QUESTION}]}
        client.post("/v1/chat/completions", json=body).raise_for_status()

    return ask, chat


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args(argv)
    from rag.api import build_server, start_in_thread, stop

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data = Path(tmp) / "data"
        svc = RagService(Settings(data_dir=data, corpus_dir=REPO / "corpus", _env_file=None))  # type: ignore[call-arg]
        svc.ingest([REPO / "corpus"])
        # 1. the API on a thread of this process, over the same service, timed in turn with the direct call
        port = _free_port()
        server = build_server(svc, "127.0.0.1", port, log_level="warning", access_log=False)
        thread = start_in_thread(server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            ask, chat = _callers(client)
            same = _interleaved({"local": lambda: svc.ask(QUESTION), "ask": ask, "chat": chat}, args.runs, args.warmup)
        stop(server, thread)
        svc.close()  # 2. `rag serve` as its own process becomes the index's one owner
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
        env.update(RAG_DATA_DIR=str(data), ANONYMIZED_TELEMETRY="False")
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                if not _wait_ready(client, proc):
                    print("`rag serve` did not become ready", file=sys.stderr)
                    return 1
                ask, _ = _callers(client)
                separate = _timed(ask, args.runs, args.warmup)
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"warm, seed corpus, {QUESTION!r}, {args.runs} runs after {args.warmup} warm-ups")
    print(_summary("in-process RagService.ask", same["local"]))
    print(_summary("POST /v1/ask (same process)", same["ask"]))
    print(_summary("POST /v1/chat/completions (same)", same["chat"]))
    print(_summary("POST /v1/ask (`rag serve` process)", separate))
    local = statistics.median(same["local"])
    print(
        f"/v1/ask median / in-process median = {statistics.median(same['ask']) / local:.2f} (same process), "
        f"{statistics.median(separate) / local:.2f} (`rag serve`); target: within 2x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
