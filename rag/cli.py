"""`rag ingest | ask | chat | stats | eval | ui | serve`: a thin edge over the library's public API."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag import (
    Answer,
    ConfigError,
    IngestReport,
    RagError,
    RagService,
    Settings,
    Turn,
    also_line,
    count_articles,
    make_filter,
)

EXIT_ERROR = 1


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return Settings(**overrides)


def _service(args: argparse.Namespace) -> RagService:
    return RagService(_settings(args))


def _err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# -- ingest -------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace) -> int:
    from rag.watch import Watcher

    if len(args.paths) > 1 or args.limit is not None:
        raise ConfigError("`rag ingest --watch DIR` watches one folder and takes no --limit - drop the extras.")
    svc = _service(args)
    log = logging.getLogger("rag.watch")
    log.setLevel(logging.INFO)
    root = Path(args.paths[0]) if args.paths else svc.settings.corpus_dir
    Watcher(svc, root).run(on_ready=lambda: log.info("ready: Ctrl-C stops watching"))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.watch and args.rebuild:
        print("error: run `rag ingest --rebuild` on its own first, then `rag ingest --watch`", file=sys.stderr)
        return EXIT_ERROR
    if args.watch:
        return cmd_watch(args)
    svc = _service(args)
    paths = [Path(p) for p in args.paths] or [svc.settings.corpus_dir]
    if args.rebuild:
        print(f"re-embedding the index: {svc.rebuild()} articles", file=sys.stderr)
    total = count_articles(paths)
    bar = tqdm(
        total=total, unit="article", desc="ingest", file=sys.stderr, disable=args.quiet or None, dynamic_ncols=True
    )

    def progress(done: int, chunks: int) -> None:
        bar.n = done
        bar.set_postfix(chunks=chunks, refresh=False)
        bar.refresh()

    try:
        report = svc.ingest(paths, sync=args.sync, progress=progress, limit=args.limit)
    finally:
        bar.close()
    for s in report.skipped:
        logging.warning("skipped %s: %s", s.path, s.reason)
    for s in report.undated:
        logging.warning("%s: %s (listed as undated; date filters leave it out)", s.path, s.reason)
    status = _ingest_status(report, paths)
    if args.json:
        print(json.dumps(report.to_dict()))
        return status
    from rich.table import Table

    t = Table(title=f"ingest into {svc.settings.index_location}")
    for col in ("", "added", "updated", "unchanged", "removed", "skipped"):
        t.add_column(col)
    t.add_row(
        "articles",
        str(report.added),
        str(report.updated),
        str(report.unchanged),
        str(report.removed),
        str(len(report.skipped)),
    )
    t.add_row("chunks", str(report.chunks_added), "", "", str(report.chunks_removed), "")
    _err_console().print(t)
    if report.syndication:
        syn = report.syndication
        upgraded = " (index upgraded: clusters added from the stored text)" if syn.get("upgraded") else ""
        _err_console().print(f"syndicated copies: {syn['clusters']} clusters of {syn['articles_in_clusters']} "
                             f"articles{upgraded}")
    return status


def _ingest_status(report: IngestReport, paths: list[Path]) -> int:
    """Non-zero (with one line saying why) when nothing at all could be ingested."""
    if report.added or report.updated or report.unchanged or report.removed:
        return 0
    where = ", ".join(map(str, paths))
    if report.skipped:
        print(f"error: nothing was ingested: all {len(report.skipped)} inputs in {where} were skipped "
              "(see the warnings above)", file=sys.stderr)
    else:
        print(f"error: no articles found in {where} - supported files: .txt .md .html .json .jsonl .jsonl.gz",
              file=sys.stderr)
    return EXIT_ERROR


def cmd_doctor(args: argparse.Namespace) -> int:
    report = _service(args).doctor(repair=args.repair)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"{report.articles} articles, {report.chunks} chunks, index schema {report.schema_version}, "
              f"{report.clusters} syndicated-copy clusters", file=sys.stderr)
        for line in report.repaired:
            print(f"repaired: {line}", file=sys.stderr)
        for line in report.problems:
            print(f"problem: {line}", file=sys.stderr)
        if report.healthy:
            print("the index is healthy", file=sys.stderr)
        elif not args.repair:
            print("run `rag doctor --repair` to rebuild what is broken", file=sys.stderr)
    return 0 if report.healthy else EXIT_ERROR


# -- ask / chat -----------------------------------------------------------------
def _print_answer(answer: Answer) -> None:
    from rich.console import Console
    from rich.markup import escape

    c = Console()
    if answer.refused:
        c.print(f"[yellow]{escape(answer.answer)}[/yellow]")
        if answer.contexts:
            titles = list(dict.fromkeys(p.title for p in answer.contexts if p.title))[:3]
            c.print("[dim]Closest articles: " + escape("; ".join(titles)) + "[/dim]")
        return
    c.print(escape(answer.answer))
    if answer.latest_source:
        c.print(f"[dim]Latest source cited: published {answer.latest_source}[/dim]")
    c.print()
    for cit in answer.citations:
        title = cit.title + (" (title derived from text)" if cit.title_derived else "")
        meta = ", ".join(x for x in (cit.source, cit.published or "undated", cit.url) if x)
        c.print(f"[bold][{cit.n}][/bold] {escape(title)}" + (f" [dim]- {escape(meta)}[/dim]" if meta else ""))
        c.print(f"    [green]“{escape(cit.quote)}”[/green] [dim](chars {cit.start}-{cit.end})[/dim]")
        if cit.also_reported_by:
            c.print(f"    [dim]also reported by: {escape(also_line(cit.also_reported_by))}[/dim]")


def cmd_ask(args: argparse.Namespace) -> int:
    svc = _service(args)
    answer = svc.ask(args.question, k=args.k, mode=args.mode, since=args.since, until=args.until, as_of=args.as_of)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        _print_answer(answer)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    make_filter(args.since, args.until, args.as_of)  # a malformed date fails once, before the first question
    svc = _service(args)
    history: list[Turn] = []
    interactive = sys.stdin.isatty() and not args.json
    status = 0

    def lines() -> Any:
        if not interactive:
            if isinstance(sys.stdin, io.TextIOWrapper):  # a line that is not UTF-8 is an error for that line only
                sys.stdin.reconfigure(errors="surrogateescape")
            yield from sys.stdin
            return
        _err_console().print(
            "[dim]Ask about the articles; empty line or Ctrl-D to quit, /new for a new conversation.[/dim]"
        )
        while True:
            try:
                line = input("you> ")
            except EOFError:
                return
            if not line.strip():
                return
            yield line

    for raw in lines():
        q = raw.strip()
        if not q:
            continue
        if q == "/new":
            history.clear()
            continue
        try:
            answer = svc.ask(
                q, history=history, k=args.k, mode=args.mode, since=args.since, until=args.until, as_of=args.as_of
            )
        except RagError as exc:
            print(f"error: {exc.user_message}", file=sys.stderr)
            if args.json:
                print(json.dumps({"question": q, "error": exc.user_message}))
            status = EXIT_ERROR
            continue
        history.append(Turn(q, answer.answer, answer.standalone_question))
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
        else:
            _print_answer(answer)
    return status


def cmd_stats(args: argparse.Namespace) -> int:
    st = _service(args).stats()
    if args.json:
        print(json.dumps(st))
    else:
        for k, v in st.items():
            print(f"{k:16} {v}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    app = Path(__file__).resolve().parent.parent / "ui" / "app.py"
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app),
            "--server.headless",
            "true",
            "--server.address",
            args.host,
            "--server.port",
            str(args.port),
            "--browser.gatherUsageStats",
            "false",
        ]
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    if args.ui:  # one process serves both, so one process owns the index (ui/serve.py)
        env = dict(os.environ)
        if args.data_dir:
            env["RAG_DATA_DIR"] = args.data_dir
        launcher = Path(__file__).resolve().parent.parent / "ui" / "serve.py"
        cmd = [sys.executable, str(launcher), "--host", host, "--port", str(port)]
        # Replace this process (same pid): a signal to `rag serve --ui` reaches the server, never leaves it behind.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [*cmd, "--ui-host", args.ui_host, "--ui-port", str(args.ui_port)], env)
    from rag.api import build_server

    svc = RagService(settings)
    server = build_server(svc, host, port)
    _err_console().print(f"API on http://{host}:{port} (OpenAPI at /docs, /openapi.json); Ctrl-C stops it")
    server.run()
    close = getattr(svc, "close", None)
    if callable(close):
        close()
    return 0 if server.started else EXIT_ERROR


# -- wiring ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Cited answers from a folder of news articles.")
    p.add_argument("--data-dir", help="override RAG_DATA_DIR")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="add, update (and with --sync remove) articles in the index")
    s.add_argument("paths", nargs="*", help="files or folders (default: RAG_CORPUS_DIR)")
    s.add_argument("--sync", action="store_true", help="also remove articles whose files are gone")
    s.add_argument("--limit", type=int, help="stop after N articles")
    s.add_argument("--rebuild", action="store_true",
                   help="first re-embed every indexed article with the current settings (e.g. after an upgrade)")
    s.add_argument("--watch", action="store_true", help="then keep the folder indexed as files appear, change, go")
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_ingest)

    for name, fn, helptext in (("ask", cmd_ask, "answer one question"), ("chat", cmd_chat, "a conversation")):
        s = sub.add_parser(name, help=helptext)
        if name == "ask":
            s.add_argument("question")
        s.add_argument("--json", action="store_true", help="JSON only on stdout")
        s.add_argument("-k", type=int, help="passages to retrieve (RAG_TOP_K)")
        s.add_argument("--mode", choices=["auto", "extractive", "llm"])
        s.add_argument("--since", metavar="YYYY-MM-DD", help="only articles published on or after this day")
        s.add_argument("--until", metavar="YYYY-MM-DD", help="only articles published on or before this day")
        s.add_argument("--as-of", metavar="YYYY-MM-DD", help="answer as of this day: later articles are not seen")
        s.set_defaults(func=fn)

    s = sub.add_parser("doctor", help="check the index against its articles; --repair rebuilds what is broken")
    s.add_argument("--repair", action="store_true", help="rebuild broken vectors, chunks and BM25")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("stats", help="what is in the index")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser("ui", help="start the Streamlit app")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8501)
    s.set_defaults(func=cmd_ui)

    s = sub.add_parser("serve", help="the HTTP API (/v1/ask, OpenAI-compatible /v1/chat/completions)")
    s.add_argument("--host", help="listen address (RAG_API_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (RAG_API_PORT, default 8080)")
    s.add_argument("--ui", action="store_true", help="also serve the Streamlit app from the same process")
    s.add_argument("--ui-host", default="127.0.0.1", help="with --ui: the app's address")
    s.add_argument("--ui-port", type=int, default=8501, help="with --ui: the app's port")
    s.set_defaults(func=cmd_serve)

    _register_plugins(sub)
    return p


PLUGIN_GROUP = "rag.commands"  # entry points whose value is register(subparsers); `rag eval` is one


def _register_plugins(sub: Any) -> None:
    """Commands that live outside the library (the eval suite) register through entry points, so rag/
    never imports them; one that fails to load stays listed and says why when used, never vanishes."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()(sub)
        except Exception as exc:
            problem = f"`rag {ep.name}` could not be loaded ({exc.__class__.__name__}: {exc}) - run `make install`"
            broken = sub.add_parser(
                ep.name, help=f"(broken: {exc.__class__.__name__})", add_help=False, prefix_chars="\x00"
            )
            broken.add_argument("rest", nargs="*")  # any arguments: the command says why it cannot run
            broken.set_defaults(func=lambda _args, problem=problem: _fail(problem))


def _fail(problem: str) -> int:
    raise ConfigError(problem)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    for noisy in ("chromadb", "httpx", "trafilatura", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RagError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"error: unexpected {exc.__class__.__name__} - rerun with `rag --debug ...` and report it.", file=sys.stderr
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
