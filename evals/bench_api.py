"""Load benchmark of `rag serve` (`make bench-api`): 1/4/16 clients over HTTP against 4 threads in process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from evals.benchutil import REPO, cpu_note, md_table, write_section
from evals.metrics import percentile
from rag import RagService, Settings

BENCH_DIR = REPO / ".rag" / "bench-api"
GOLDEN = REPO / "evals" / "datasets" / "golden.jsonl"
RTQA_FILE = Path("realtimeqa-2025") / "articles.jsonl.gz"
KEY_PREFIX = "bench-api-client-key-"  # one read key per client: the rate limit is per key


def questions() -> list[str]:
    """The fixed mix: every single-question item of the golden set, in file order."""
    items = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [it["question"] for it in items if it.get("question")]


def client_key(i: int) -> str:
    return f"{KEY_PREFIX}{i:04d}"


@dataclass
class Run:
    """One load level: latencies of the successful requests, and every status that was not 200."""

    label: str
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = float("nan")
    load1: float = float("nan")

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    def row(self) -> list[Any]:
        lat = self.latencies_ms
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "0"
        return [self.label, self.clients, self.requests / self.seconds, percentile(lat, 50), percentile(lat, 95),
                percentile(lat, 99), errs, self.peak_rss_mb, self.load1]


# -- the load generator (its own process) ---------------------------------------------------------------
def generate(url: str, clients: int, seconds: float, mix: list[str]) -> dict[str, Any]:
    """`clients` threads, each with its own httpx client and key, asking the mix in turn until the deadline."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    errs: list[dict[str, int]] = [{} for _ in range(clients)]
    deadline = [0.0]
    # the deadline is set once every client is connected and warm, before any of them is released
    start = threading.Barrier(clients + 1, action=lambda: deadline.__setitem__(0, time.monotonic() + seconds))

    def worker(i: int) -> None:
        headers = {"Authorization": f"Bearer {client_key(i)}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            c.post("/v1/ask", json={"question": mix[i % len(mix)]})  # connect and warm, untimed
            start.wait()
            n = i * 7
            while time.monotonic() < deadline[0]:
                q = mix[n % len(mix)]
                n += 1
                t = time.perf_counter()
                try:
                    status = str(c.post("/v1/ask", json={"question": q}).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ms = (time.perf_counter() - t) * 1000
                if status == "200":
                    lat[i].append(ms)
                else:
                    errs[i][status] = errs[i].get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - (deadline[0] - seconds)
    merged: dict[str, int] = {}
    for e in errs:
        for k, v in e.items():
            merged[k] = merged.get(k, 0) + v
    return {"seconds": elapsed, "latencies_ms": [x for row in lat for x in row], "errors": merged}


def run_load(url: str, clients: int, seconds: float, label: str) -> Run:
    """The load generator in a child process (its CPU and GIL are not the orchestrator's)."""
    out = subprocess.run(
        [sys.executable, "-m", "evals.bench_api", "--generate", url, "--clients", str(clients),
         "--seconds", str(seconds)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    data = json.loads(out.stdout)
    return Run(label, clients, data["seconds"], data["latencies_ms"], data["errors"])


# -- the server under test --------------------------------------------------------------------------------------
def rss_mb(pid: int, field_name: str = "VmHWM") -> float:
    """VmHWM: the peak resident set size of a process so far; VmRSS: now."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Server:
    def __init__(self, data_dir: Path, port: int, clients: int) -> None:
        keys = ",".join(client_key(i) for i in range(clients))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_API")}
        env.update(RAG_DATA_DIR=str(data_dir), RAG_API_KEYS=keys, ANONYMIZED_TELEMETRY="False")
        self.url = f"http://127.0.0.1:{port}"
        self.log = (data_dir / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit(f"rag serve did not become ready - see {data_dir / 'serve.log'}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- in process -------------------------------------------------------------------------------------------------
def in_process(svc: RagService, threads: int, seconds: float, mix: list[str]) -> Run:
    """The same mix answered by `threads` threads calling RagService.ask directly (no HTTP)."""
    lat: list[list[float]] = [[] for _ in range(threads)]
    errs: dict[str, int] = {}
    lock = threading.Lock()
    for q in mix[:threads]:
        svc.ask(q)
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        n = i * 7
        while time.monotonic() < deadline:
            q = mix[n % len(mix)]
            n += 1
            t = time.perf_counter()
            try:
                svc.ask(q)
            except Exception as exc:  # counted, never raised: a benchmark reports errors
                with lock:
                    errs[type(exc).__name__] = errs.get(type(exc).__name__, 0) + 1
                continue
            lat[i].append((time.perf_counter() - t) * 1000)

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    run = Run("in process (RagService.ask)", threads, time.monotonic() - t0, [x for r in lat for x in r], errs)
    run.load1 = os.getloadavg()[0]
    return run


# -- corpora ----------------------------------------------------------------------------------------------------
def prepare(name: str, settings: Settings, articles: int) -> Path | None:
    """The data dir of a corpus under .rag/bench-api, ingested once and reused (ingest is idempotent)."""
    data = BENCH_DIR / name
    if name == "seed":
        source, limit = REPO / "corpus", None
    else:
        source, limit = settings.datasets_dir / RTQA_FILE, articles
        if not source.exists():
            print(f"skipping {name}: {source} not found (RAG_DATASETS_DIR)", file=sys.stderr)
            return None
    svc = RagService(settings.model_copy(update={"data_dir": data}))
    try:
        if svc.stats()["articles"] < (limit or 1):
            print(f"ingesting {source} into {data} (once; reused by later runs)", file=sys.stderr)
        svc.ingest([source], limit=limit)
    finally:
        svc.close()
    return data


def bench_corpus(name: str, data: Path, levels: list[int], seconds: float, mix: list[str],
                 settings: Settings) -> tuple[list[Run], Run]:
    server = Server(data, free_port(), max(levels))
    runs = []
    try:
        for n in levels:
            print(f"[{name}] {n} client(s) for {seconds:g} s", file=sys.stderr)
            run = run_load(server.url, n, seconds, "HTTP POST /v1/ask")
            run.peak_rss_mb, run.load1 = rss_mb(server.proc.pid), os.getloadavg()[0]
            runs.append(run)
    finally:
        server.stop()
    print(f"[{name}] in process, 4 threads for {seconds:g} s", file=sys.stderr)
    svc = RagService(settings.model_copy(update={"data_dir": data}))
    try:
        base = in_process(svc, 4, seconds, mix)
    finally:
        svc.close()
    from evals.benchutil import peak_rss_mb

    base.peak_rss_mb = peak_rss_mb()
    return runs, base


def soak(data: Path, minutes: float, clients: int = 4) -> dict[str, Any]:
    """`clients` clients for `minutes`, server RSS sampled each minute: errors and whether memory stays flat."""
    server = Server(data, free_port(), clients)
    samples: list[float] = []
    totals = Run("soak", clients, 0.0)
    try:
        for _ in range(max(1, round(minutes))):
            run = run_load(server.url, clients, 60.0, "soak")
            totals.latencies_ms += run.latencies_ms
            totals.seconds += run.seconds
            for k, v in run.errors.items():
                totals.errors[k] = totals.errors.get(k, 0) + v
            samples.append(rss_mb(server.proc.pid, "VmRSS"))
    finally:
        server.stop()
    return {"run": totals, "rss_mb": samples}


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = " (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


HEADER = ["run", "clients", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors", "peak RSS MiB", "load (1 min)"]


def report(results: dict[str, tuple[list[Run], Run]], seconds: float, soaked: dict[str, Any] | None) -> str:
    lines = [
        "## API load benchmark (`make bench-api`)", "",
        f"Commit {git_commit()}; {cpu_note()} at the end of the run. Load generator: its own process, one httpx "
        f"client and key per thread, {seconds:g} s per level, the {len(questions())} single questions of "
        "`evals/datasets/golden.jsonl` in a fixed rotation; server `rag serve` (extractive) on 127.0.0.1, its "
        "peak RSS is VmHWM since start. The in-process row asks the same mix from 4 threads with no HTTP.", "",
    ]
    if seconds < 60 or len(results) < 2:
        lines += [f"**A shortened run** ({seconds:g} s per level, {', '.join(results) or 'no corpus'}): it shows the "
                  "benchmark works; the figures of record are `make bench-api` (60 s per level, both corpora) on "
                  "an idle machine.", ""]
    for name, (runs, base) in results.items():
        lines += [f"### {name}", "", md_table(HEADER, [r.row() for r in [*runs, base]]), ""]
        four = next((r for r in runs if r.clients == 4), None)
        if four and base.requests:
            ratio = (four.requests / four.seconds) / (base.requests / base.seconds)
            lines += [f"HTTP throughput at 4 clients / in process with 4 threads: **{ratio:.2f}x**.", ""]
    if soaked:
        run, rss = soaked["run"], soaked["rss_mb"]
        lines += ["### Soak", "", md_table(HEADER, [run.row()]), "",
                  "Server RSS each minute (MiB): " + ", ".join(f"{x:.0f}" for x in rss), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=60.0, help="per load level (default 60)")
    p.add_argument("--clients", default="1,4,16", help="load levels (comma-separated)")
    p.add_argument("--corpus", choices=["seed", "realtimeqa", "both"], default="both")
    p.add_argument("--articles", type=int, default=500, help="RealTime QA articles to index (default 500)")
    p.add_argument("--soak-minutes", type=float, default=0.0, help="then 4 clients for this long (e.g. 10)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--generate", metavar="URL", help=argparse.SUPPRESS)  # the load generator's own process
    args = p.parse_args(argv)
    levels = [int(x) for x in args.clients.split(",") if x.strip()]
    mix = questions()
    if args.generate:
        print(json.dumps(generate(args.generate, levels[0], args.seconds, mix)))
        return 0
    settings = Settings()
    names = ["seed", "realtimeqa"] if args.corpus == "both" else [args.corpus]
    results: dict[str, tuple[list[Run], Run]] = {}
    last: Path | None = None
    for name in names:
        data = prepare(name, settings, args.articles)
        if data is None:
            continue
        title = "Seed corpus (corpus/)" if name == "seed" else f"{args.articles} RealTime QA articles"
        results[title] = bench_corpus(name, data, levels, args.seconds, mix, settings)
        last = data
    soaked = soak(last, args.soak_minutes) if args.soak_minutes > 0 and last else None
    text = report(results, args.seconds, soaked)
    print(text)
    if not args.no_write:
        write_section("bench-api", text)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
