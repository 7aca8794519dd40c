"""`rag eval`, `rag eval judge`, `rag eval retrieval`: the eval suite's command line (registered by rag.cli)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(data_dir=Path(args.data_dir)) if getattr(args, "data_dir", None) else Settings()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _table(title: str, columns: list[str], rows: Sequence[tuple[str, ...]]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        style = "red" if r and r[-1] == "REGRESSED" else None
        t.add_row(*r, style=style)
    return t


def cmd_eval(args: argparse.Namespace) -> int:
    """One golden dataset, or each committed one (`--dataset all`) in turn; exit 1 when any regressed."""
    from evals.runner import DATASETS, dataset_path

    if args.dataset != "all":
        return _eval_one(args, dataset_path(args.dataset), Path(args.out) if args.out else None)
    rc = 0
    for name in DATASETS:
        rc = max(rc, _eval_one(args, dataset_path(name), Path(args.out) / name if args.out else None))
    return rc


def _eval_one(args: argparse.Namespace, dataset: Path, out_dir: Path | None) -> int:
    import shutil

    from evals.runner import metric_rows, run_golden, write_run

    settings = _settings(args)
    con = _console()
    with con.status("evaluating ...") as status:
        run = run_golden(settings, dataset, mode=args.mode, k=args.k, distractors=args.distractors,
                         progress=lambda i, n: status.update(f"item {i}/{n}"),
                         allow_missing_baseline=args.update_baseline)
    if args.update_baseline:
        from evals.runner import BASELINE_PATH, baseline_from, save_baseline

        new = baseline_from(run.summary)
        save_baseline(new, BASELINE_PATH)
        run.summary.update(baseline=new["metrics"], thresholds=new["thresholds"], regressions=[],
                           baseline_comparable=True)
        con.print(f"wrote {BASELINE_PATH}")
    out = write_run(run, out_dir or settings.evals_dir / "latest")
    by_dataset = settings.evals_dir / "by-dataset" / run.summary["dataset"]  # each dataset's latest run, for the UI
    if out_dir is None:
        shutil.rmtree(by_dataset, ignore_errors=True)
        shutil.copytree(out, by_dataset)
    s = run.summary
    if args.json:
        print(json.dumps(s))
    else:
        from rich.console import Console

        Console().print(_table(
            f"{s['dataset']} ({s['mode']}, {s['n']} items, {s['distractors']} distractors)",
            ["metric", "all", "dev", "test", "threshold", "status"], metric_rows(s)))
        con.print(f"{s['passed']} passed, {s['failed']} failed; reports in {out}")
    if s["regressions"]:
        con.print(f"[red]regressed below the committed thresholds: {', '.join(s['regressions'])}[/red]")
        return 1
    if not s.get("baseline_comparable", True):
        con.print(f"[yellow]not gated: evals/baseline.json has no baseline for {s['dataset']} in {s['mode']} mode "
                  f"with {s['distractors']} distractors (record one with --update-baseline)[/yellow]")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from evals.judge_eval import evaluate_judge

    t = time.perf_counter()
    if args.judge == "llm":
        from evals.judge_llm import LLMJudge, evaluate_llm_judge, model_from_settings

        model = model_from_settings(_settings(args))
        with _console().status("asking the model about QAGS ..."):
            res = evaluate_llm_judge(Path(args.qags), args.limit, LLMJudge(model))
        res["seconds"] = round(time.perf_counter() - t, 1)
        print(json.dumps(res) if args.json else
              f"LLM judge on {res['n']} sentences: balanced accuracy {res['balanced_accuracy']:.3f}, ROC AUC "
              f"{res['roc_auc']:.3f}, {res['parse_failures']} unreadable replies")
        return 0
    with _console().status("scoring QAGS ..."):
        res = evaluate_judge(Path(args.qags), limit_articles=args.limit)
    res["seconds"] = round(time.perf_counter() - t, 1)
    if args.json:
        print(json.dumps(res))
        return 0
    from rich.console import Console

    def cell(v: dict[str, float]) -> tuple[str, str]:
        return f"{v['balanced_accuracy']:.3f}", f"{v['roc_auc']:.3f}"

    out = Console()
    rows = [("judge (shipped)", *cell(res))] + [(f"baseline: {k}", *cell(v)) for k, v in res["baselines"].items()]
    out.print(_table(f"agreement with the human majority vote on {Path(args.qags).name} (n={res['n']}; "
                     f"{'in-sample' if res['in_sample'] else 'held out'})",
                     ["judge", "balanced accuracy", "ROC AUC"], rows))
    conf = res["confusion_at_threshold"]
    out.print(_table(f"at the threshold {res['threshold']}", ["judge says", "people agree", "people disagree"], [
        ("supported", str(conf["supported_and_people_agree"]), str(conf["supported_but_people_disagree"])),
        ("not supported", str(conf["not_supported_and_people_agree"]), str(conf["not_supported_but_people_disagree"])),
    ]))
    v = res["verdicts"]
    out.print(f"verdicts (uncertain band {v['band']}): supported {v['supported']['n']}, uncertain "
              f"{v['uncertain']['n']}, not supported {v['not supported']['n']}")
    cv = res["cross_validation_at_fit"].get("per_style", {})
    rows = [(f"{name} ({style}, cross-validated)", *cell(s)) for name, per in cv.items() for style, s in per.items()]
    for fit, per in res["cross_style_at_fit"].items():
        if isinstance(per, dict):
            rows += [(f"{name} ({fit.replace('_', ' ')})", *cell(s)) for name, s in per.items()]
    out.print(_table("at fit time (rag/judge.json): grouped CV per style, and cross-style",
                     ["model", "balanced accuracy", "ROC AUC"], rows))
    return 0


def cmd_retrieval(args: argparse.Namespace) -> int:
    from evals.retrieval import METHODS, run_retrieval

    settings = _settings(args)
    t = time.perf_counter()
    with _console().status("indexing and asking ...") as status:
        res = run_retrieval(Path(args.realtimeqa), settings, Path(args.questions) if args.questions else None,
                            args.articles, Path(args.index) if args.index else None, args.k,
                            progress=lambda msg: status.update(msg), as_of_question_date=args.as_of_question_date,
                            split=args.split, collection=args.collection)
    res["seconds"] = round(time.perf_counter() - t, 1)
    if args.json:
        print(json.dumps(res))
        return 0
    from rich.console import Console

    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    rows = [(m, cell(res["recall_at_k"][m]), cell(res["recall_at_k_short"][m])) for m in METHODS]
    Console().print(_table(
        f"recall@{res['k']} on {res['articles']} articles ({res['n']} questions, {res['n_short']} one-word)",
        ["method", "all", "one-word answers"], rows))
    if "as_of_question_date" in res:
        t = res["as_of_question_date"]
        rows_as_of: list[tuple[str, ...]] = [
            (m, *(f"{cell(t[s]['recall_at_k'][m])} -> {cell(t[s]['recall_at_k_as_of'][m])}"
                  for s in ("all", "dev", "test"))) for m in METHODS]
        Console().print(_table(
            f"recall@{res['k']} without -> with as-of = quiz date (n: all {t['all']['n']}, dev {t['dev']['n']}, "
            f"test {t['test']['n']}; {t['n_recency_questions']} ask for the latest)",
            ["method", "all", "dev (Jan-Mar)", "test (Apr-Jun)"], rows_as_of))
    return 0


def register(subparsers: Any) -> None:
    """Add `rag eval` (with sub-commands `judge` and `retrieval`) to rag's argparse sub-parsers."""
    p = subparsers.add_parser("eval", help="golden-set eval, judge agreement, retrieval comparison")
    p.add_argument("--dataset", default="golden",
                   help="golden (default: the seed article + distractors), news (a fixed RealTime QA corpus), all, "
                        "or a JSON lines file of the same shape")
    p.add_argument("--mode", choices=["auto", "extractive", "llm"], help="answerer (default: RAG_MODE)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.add_argument("--out", help="output directory (default $RAG_DATA_DIR/evals/latest)")
    p.add_argument("-k", type=int, help="passages retrieved per question")
    p.add_argument("--distractors", type=int, default=200, help="RealTime QA articles indexed beside the corpus")
    p.add_argument("--update-baseline", action="store_true", help="write evals/baseline.json from this run's dev split")
    p.set_defaults(func=cmd_eval)
    sub = p.add_subparsers(dest="eval_command")

    j = sub.add_parser("judge", help="the shipped judge's agreement with QAGS human labels")
    j.add_argument("--qags", required=True, help="path to a QAGS file (mturk_cnndm.jsonl, mturk_xsum_dev.jsonl)")
    j.add_argument("--limit", type=int, help="only the first N articles")
    j.add_argument("--judge", choices=["offline", "llm"], default="offline",
                   help="offline (the shipped judge, default) or llm (the configured model, RAGAS-style claims)")
    j.add_argument("--json", action="store_true")
    j.set_defaults(func=cmd_judge)

    r = sub.add_parser("retrieval", help="dense vs BM25 vs hybrid recall@k on RealTime QA")
    r.add_argument("--realtimeqa", required=True, help="folder with articles.jsonl.gz and questions-2025H1.jsonl")
    r.add_argument("--questions", help="questions file (default: the folder's questions-2025H1.jsonl)")
    r.add_argument("--articles", type=int, help="index only the first N articles")
    r.add_argument("--index", help="data dir of the index (reused when it exists)")
    r.add_argument("--collection", default="realtimeqa",
                   help="its collection (default realtimeqa; an index made by make bench-scale: articles)")
    r.add_argument("-k", type=int, default=5)
    r.add_argument("--split", choices=["dev", "test", "all"], default="all",
                   help="questions by quiz date: dev = January-March, test = April-June (tune on dev only)")
    r.add_argument("--as-of-question-date", action="store_true",
                   help="also ask each question as of its quiz date (later articles hidden, recency prior)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_retrieval)


