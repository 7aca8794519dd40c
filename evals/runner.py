"""The golden eval: index corpus + distractors, ask every item, score, write reports, compare baseline."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from evals.golden import GOLDEN_PATH, NEWS_PATH, GoldenItem, ask_item, corpus_ids, load_golden
from evals.metrics import ItemResult, Metric, default_metrics, repeated_lines, summarise
from evals.realtimeqa import articles_path, write_ids_subset, write_subset
from rag import Answer, ConfigError, RagService, Settings, SupportJudge

log = logging.getLogger(__name__)
BASELINE_PATH = Path(__file__).resolve().parent / "baseline.json"
DISTRACTORS = 200
SPLITS = ("dev", "test")
DATASETS = {"golden": GOLDEN_PATH, "news": NEWS_PATH}
LOWER_IS_BETTER = frozenset({"answer_boilerplate_rate"})


def dataset_path(name: str | None) -> Path:
    """`golden` (default), `news`, or the path of a golden file of the same shape."""
    return DATASETS.get(name or "golden") or Path(str(name))


@dataclass
class EvalRun:
    summary: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None


def eval_service(settings: Settings, distractors: int = DISTRACTORS) -> tuple[RagService, int]:
    """A service over its own index (reused between runs): the corpus plus the first N RealTime QA articles.

    Returns the service and how many distractors it really has (0 when the datasets are absent).
    """
    src = articles_path(settings.datasets_dir)
    if distractors and not src.is_file():
        log.warning("RealTime QA articles not found at %s: evaluating on the corpus alone, without distractors", src)
        distractors = 0
    index_dir = settings.evals_dir / f"index-golden-{distractors}"
    svc = RagService(settings.model_copy(update={"data_dir": index_dir, "collection": "golden"}))
    paths = [settings.corpus_dir]
    if distractors:
        subset = index_dir / f"realtimeqa-first-{distractors}.jsonl"
        if not subset.is_file():
            write_subset(settings.datasets_dir, subset, distractors)
        paths.append(subset)
    svc.ingest(paths, sync=True)
    return svc, distractors


def news_service(settings: Settings, dataset: Path) -> tuple[RagService, int]:
    """A service over exactly the dataset's fixed corpus (its `<stem>_articles.txt` ids of RealTime QA)."""
    ids = corpus_ids(dataset) or []
    src = articles_path(settings.datasets_dir)
    if not src.is_file():
        raise ConfigError(f"The {dataset.stem} golden set reads its articles from {src}, which is absent - set "
                          "RAG_DATASETS_DIR to the folder holding realtimeqa-2025/.")
    index_dir = settings.evals_dir / f"index-{dataset.stem}"
    svc = RagService(settings.model_copy(update={"data_dir": index_dir, "collection": dataset.stem}))
    subset = index_dir / f"{dataset.stem}-articles.jsonl"
    if not subset.is_file():
        write_ids_subset(settings.datasets_dir, subset, ids)
    svc.ingest([subset], sync=True)
    return svc, 0


def corpus_boilerplate(svc: RagService) -> frozenset[str]:
    """Lines repeated across unrelated articles of one site in the indexed corpus (for the boilerplate rate)."""
    arts = []
    for rec in svc.list_articles():
        art = svc.get_article(str(rec.get("article_id", "")))
        if art is not None:
            arts.append((art.source or urlparse(art.url).netloc, art.text))
    return repeated_lines(arts)


def item_result(svc: RagService, item: GoldenItem, answer: Answer) -> ItemResult:
    chunks = {p.chunk_id: p.text for p in answer.contexts}
    exact = []
    cited = {}
    for c in answer.citations:
        art = svc.get_article(c.article_id)
        exact.append(art is not None and art.text[c.start : c.end] == c.quote)
        cited[c.n] = (c.quote, chunks.get(c.chunk_id, c.quote))
        if c.field:
            # A metadata citation stands for the sentence citing it when the article really has that value and
            # the sentence states it (the judge then sees the sentence as its own evidence); else nothing.
            value = str(getattr(art, c.field, "") or "") if art is not None else ""
            said = [s.text for s in answer.sentences if c.n in s.citations and value and value in s.text]
            cited[c.n] = (said[0], said[0]) if said else ("", "")
    return ItemResult(
        refuse=item.refuse, refused=answer.refused, answer=answer.answer, key_facts=item.key_facts,
        evidence=item.evidence, contexts=[p.text for p in answer.contexts],
        sentences=[(s.text, list(s.citations)) for s in answer.sentences],
        citations=cited,
        quotes_exact=exact, latency_ms=float(answer.timings_ms.get("total", 0.0)), kind=item.kind,
    )


def failures_of(item: GoldenItem, scores: dict[str, Any], refused: bool) -> list[str]:
    if item.refuse:
        return [] if refused else ["answered a question that should be refused"]
    if refused:
        return ["refused a question the corpus answers"]
    out = []
    if scores.get("answer_key_fact_recall", 1.0) < 1.0:
        out.append(f"key facts missing (recall {scores['answer_key_fact_recall']:.2f})")
    if scores.get("citation_quote_exact", 1.0) < 1.0:
        out.append("a quote is not verbatim at its offsets")
    if scores.get("faithfulness", 1.0) < 1.0:
        out.append(f"sentences not supported by their quotes (faithfulness {scores['faithfulness']:.2f})")
    if scores.get("retrieval_recall_at_k", 1.0) < 1.0:
        out.append("gold evidence not retrieved")
    return out


def load_baseline(
    path: Path = BASELINE_PATH, allow_missing: bool = False, dataset: str = "golden"
) -> dict[str, Any]:
    """The committed baseline of one dataset; a missing or unreadable file is an error (it would make every
    run pass). The file holds one entry per dataset under "datasets" (an older single entry is read as its own)."""
    if allow_missing and not path.exists():
        return {}
    try:
        data = dict(json.loads(path.read_text()))
        if "datasets" not in data:
            data = {"datasets": {data.get("dataset", "golden"): data}}
        entry = data["datasets"].get(dataset)
        if entry is None and not allow_missing:
            raise KeyError(dataset)
        return dict(entry or {})
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"The eval baseline {path} is missing or unreadable ({exc.__class__.__name__}) - restore it from git, "
            "or record one with `rag eval --update-baseline`."
        ) from exc


def baseline_from(summary: dict[str, Any]) -> dict[str, Any]:
    """A baseline from a run: the dev split's measured quality metrics, which are also the thresholds."""
    dev = {k: v for k, v in summary["metrics_by_split"]["dev"].items() if not k.startswith("latency")}
    return {
        "dataset": summary["dataset"], "mode": summary["mode"], "distractors": summary["distractors"], "split": "dev",
        "created": summary["created"], "metrics": dev, "thresholds": dict(dev),
        "note": "thresholds = the dev split's measured values (never loosened to pass); latency is not gated",
    }


def save_baseline(entry: dict[str, Any], path: Path = BASELINE_PATH) -> None:
    """Write one dataset's entry, keeping the other datasets' entries."""
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if "datasets" not in data:
        data = {"datasets": {data["dataset"]: data}} if "dataset" in data else {"datasets": {}}
    data["datasets"][entry["dataset"]] = entry
    data["note"] = "one entry per golden dataset; thresholds = its dev split's measured values"
    path.write_text(json.dumps(data, indent=2) + "\n")


def regressions(dev_metrics: dict[str, float], baseline: dict[str, Any]) -> list[str]:
    """Quality metrics of the dev split worse than their committed thresholds (above, for a rate of errors)."""
    thresholds: dict[str, float] = baseline.get("thresholds", {})

    def worse(n: str, t: float) -> bool:
        v = dev_metrics[n]
        return v > t + 1e-9 if n in LOWER_IS_BETTER else v < t - 1e-9

    return sorted(n for n, t in thresholds.items() if n in dev_metrics and worse(n, t))


def run_golden(
    settings: Settings, dataset: Path = GOLDEN_PATH, mode: str | None = "extractive", k: int | None = None,
    distractors: int = DISTRACTORS, progress: Callable[[int, int], None] | None = None,
    baseline_path: Path = BASELINE_PATH, allow_missing_baseline: bool = False,
) -> EvalRun:
    items = load_golden(dataset)
    baseline = load_baseline(baseline_path, allow_missing=True, dataset=dataset.stem)  # fail before the long run
    if not baseline and not allow_missing_baseline and dataset.resolve() in {p.resolve() for p in DATASETS.values()}:
        load_baseline(baseline_path, dataset=dataset.stem)  # raises: a committed dataset without its baseline
    t0 = time.perf_counter()
    fixed = corpus_ids(dataset) is not None
    svc, n_distractors = news_service(settings, dataset) if fixed else eval_service(settings, distractors)
    index_s = time.perf_counter() - t0
    used_mode = svc.resolve_mode(mode)
    judge = SupportJudge()
    metrics: list[Metric] = default_metrics(
        judge.supported, k or settings.top_k, corpus_boilerplate(svc), judge.supported_answer
    )
    results: list[ItemResult] = []
    answers: list[Answer] = []
    for i, item in enumerate(items):
        answer = ask_item(svc, item, mode=used_mode, k=k)
        answers.append(answer)
        results.append(item_result(svc, item, answer))
        if progress:
            progress(i + 1, len(items))
    overall, per_item = summarise(metrics, results)
    by_split = {}
    for split in SPLITS:
        idx = [i for i, it in enumerate(items) if it.split == split]
        by_split[split] = summarise(metrics, [results[i] for i in idx])[0] if idx else {}
    records: list[dict[str, Any]] = []
    for item, answer, scores in zip(items, answers, per_item, strict=True):
        fails = failures_of(item, scores, answer.refused)
        records.append({
            "id": item.id, "kind": item.kind, "split": item.split, "question": item.question,
            "turns": list(item.turns), "standalone_question": answer.standalone_question, "answer": answer.answer,
            "refused": answer.refused, "refuse_expected": item.refuse,
            "citations": [asdict(c) for c in answer.citations], "metrics": scores,
            "passed": not fails, "failures": fails, "relevance": round(answer.relevance, 4),
            "contexts": [
                {"article_id": p.article_id, "title": p.title, "score": round(p.score, 5)} for p in answer.contexts
            ],
            "timings_ms": {k2: round(v, 1) for k2, v in answer.timings_ms.items()},
        })
    comparable = (baseline.get("dataset") == dataset.stem and baseline.get("mode") == used_mode
                  and baseline.get("distractors") == n_distractors)
    summary = {
        "dataset": dataset.stem, "mode": used_mode, "n": len(items), "distractors": n_distractors,
        "metrics": overall, "metrics_by_split": by_split,
        "n_by_split": {s: sum(it.split == s for it in items) for s in SPLITS},
        "baseline": baseline.get("metrics", {}), "thresholds": baseline.get("thresholds", {}),
        "baseline_comparable": comparable,
        "regressions": regressions(by_split.get("dev", {}), baseline) if comparable else [],
        "passed": sum(r["passed"] for r in records), "failed": sum(not r["passed"] for r in records),
        "judge_threshold": judge.threshold, "index_seconds": round(index_s, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return EvalRun(summary, records)


def write_run(run: EvalRun, out_dir: Path) -> Path:
    """Write summary.json, items.jsonl and report.md; a previous run there moves to a timestamped sibling."""
    if (out_dir / "summary.json").exists():
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime((out_dir / "summary.json").stat().st_mtime))
        target = out_dir.parent / stamp
        n = 1
        while target.exists():
            target, n = out_dir.parent / f"{stamp}-{n}", n + 1
        shutil.move(str(out_dir), target)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(run.summary, indent=2, ensure_ascii=False) + "\n")
    with (out_dir / "items.jsonl").open("w", encoding="utf-8") as fh:
        for rec in run.items:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (out_dir / "report.md").write_text(report_markdown(run))
    run.out_dir = out_dir
    return out_dir


def metric_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(metric, all, dev, test, threshold, status) for the table and the report."""
    rows = []
    split = summary.get("metrics_by_split", {})
    for name, value in summary["metrics"].items():
        thr = summary.get("thresholds", {}).get(name)
        status = "" if thr is None else ("REGRESSED" if name in summary.get("regressions", []) else "ok")
        cells = [_fmt(value), _fmt(split.get("dev", {}).get(name)), _fmt(split.get("test", {}).get(name))]
        rows.append((name, *cells, _fmt(thr), status))
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if isinstance(v, float) and v > 10 else f"{v:.3f}" if isinstance(v, float) else str(v)


def report_markdown(run: EvalRun, rows: Sequence[tuple[str, ...]] | None = None) -> str:
    s = run.summary
    lines = [
        f"# Eval report: {s['dataset']} ({s['mode']})", "",
        f"{s['n']} items ({s['n_by_split']}), {s['distractors']} RealTime QA distractor articles indexed; "
        f"{s['passed']} passed, {s['failed']} failed. Regressions: {', '.join(s['regressions']) or 'none'}.", "",
        "| metric | all | dev | test | threshold (dev) | status |", "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in (rows or metric_rows(s))]
    failing = [r for r in run.items if not r["passed"]]
    if failing:
        lines += ["", "## Failing items", ""]
        for r in failing:
            lines.append(f"- **{r['id']}** ({r['kind']}, {r['split']}): {r['question']} - {'; '.join(r['failures'])}")
            lines.append(f"  - answer: {r['answer'][:300]}")
    return "\n".join(lines) + "\n"
