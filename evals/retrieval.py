"""`rag eval retrieval`: dense vs BM25 vs hybrid recall@k on RealTime QA, in its own index."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from evals.realtimeqa import ARTICLES, QUESTIONS, RtqaQuestion, contains_answer, is_short, load_questions
from evals.syndication import collapse_table
from rag import ConfigError, Method, RagService, Settings, make_filter, parse_date, wants_recency

METHODS: tuple[Method, ...] = get_args(Method)
COLLECTION = "realtimeqa"


@dataclass
class RetrievalQuestion:
    question: RtqaQuestion
    short: bool


def eligible_questions(questions: list[RtqaQuestion], texts: dict[str, str]) -> list[RetrievalQuestion]:
    """Questions whose search results include an indexed article in which the answer occurs."""
    out = []
    for q in questions:
        if any(aid in texts and contains_answer(texts[aid], q.answer) for aid in q.search_result_ids):
            out.append(RetrievalQuestion(q, is_short(q.answer)))
    return out


def split_of(q: RtqaQuestion) -> str:
    """H1 dev = quiz dates January-March, test = April-June (the retrieval protocol's split)."""
    d = parse_date(q.date)
    return "undated" if d is None else ("dev" if d.month <= 3 else "test")


def run_retrieval(
    realtimeqa_dir: Path, settings: Settings, questions_file: Path | None = None, articles: int | None = None,
    index_dir: Path | None = None, k: int = 5, progress: Callable[[str], None] | None = None,
    as_of_question_date: bool = False, split: str = "all", collection: str = COLLECTION,
) -> dict[str, Any]:
    """Index the first N articles (reused when already there), then ask every eligible question three ways.

    With as_of_question_date, each question is also asked as of its quiz date: later articles are filtered
    out and questions that ask for the latest state get the recency prior relative to that date.
    """
    src = realtimeqa_dir / Path(ARTICLES).name
    qfile = questions_file or realtimeqa_dir / Path(QUESTIONS).name
    if not src.is_file() or not qfile.is_file():
        raise ConfigError(f"RealTime QA files not found in {realtimeqa_dir} - pass --realtimeqa DIR holding "
                          f"{Path(ARTICLES).name} and {Path(QUESTIONS).name}.")
    data_dir = index_dir or settings.evals_dir / f"index-realtimeqa-{articles or 'all'}"
    svc = RagService(settings.model_copy(update={"data_dir": data_dir, "collection": collection}))
    t0 = time.perf_counter()
    report = svc.ingest([src], limit=articles)
    index_s = time.perf_counter() - t0
    indexed = {a["article_id"] for a in svc.list_articles()}
    texts = _texts(src, indexed, articles)
    questions = load_questions(qfile)
    if split != "all":  # the tuning protocol: tune on dev (Jan-Mar quiz dates), report test (Apr-Jun)
        questions = [q for q in questions if split_of(q) == split]
        if not questions:
            months = "January-March" if split == "dev" else "April-June"
            raise ConfigError(f"No question of {qfile} falls in the {split} split (quiz dates {months}) - "
                              "check the file or use --split all.")
    qs = eligible_questions(questions, texts)
    hits = {m: 0 for m in METHODS}
    hits_short = {m: 0 for m in METHODS}
    per_q: list[tuple[str, dict[str, bool], dict[str, bool]]] = []  # split, plain hits, as-of hits
    t1 = time.perf_counter()
    for i, rq in enumerate(qs):
        plain: dict[str, bool] = {}
        as_of: dict[str, bool] = {}
        day = parse_date(rq.question.date)
        for m in METHODS:
            passages = svc.retrieve(rq.question.question, k, method=m)
            hit = any(contains_answer(p.text, rq.question.answer) for p in passages[:k])
            hits[m] += hit
            hits_short[m] += hit and rq.short
            plain[m] = hit
            if as_of_question_date and day is not None:
                passages = svc.retrieve(
                    rq.question.question, k, method=m, dates=make_filter(as_of=day),
                    recency=day if wants_recency(rq.question.question) else None,
                )
                as_of[m] = any(contains_answer(p.text, rq.question.answer) for p in passages[:k])
        per_q.append((split_of(rq.question), plain, as_of))
        if progress:
            progress(f"{i + 1}/{len(qs)} questions")
    n, n_short = len(qs), sum(q.short for q in qs)
    extra: dict[str, Any] = {}
    if as_of_question_date:
        extra["as_of_question_date"] = _as_of_table(per_q, sum(wants_recency(q.question.question) for q in qs))
    # syndicated copies: the same questions with collapsing on and off (recall@k and characters returned)
    extra["collapse_duplicates"] = collapse_table(svc, qs, k, METHODS)
    return {
        "k": k, "split": split, "n": n, "n_short": n_short,
        "recall_at_k": {m: round(hits[m] / n, 4) if n else None for m in METHODS},
        "recall_at_k_short": {m: round(hits_short[m] / n_short, 4) if n_short else None for m in METHODS},
        **extra,
        "articles": len(indexed), "chunks": svc.stats()["chunks"], "index": str(data_dir),
        "index_seconds": round(index_s, 1), "articles_added": report.added,
        "query_seconds": round(time.perf_counter() - t1, 1),
    }


def _as_of_table(per_q: list[tuple[str, dict[str, bool], dict[str, bool]]], n_recency: int) -> dict[str, Any]:
    """Recall@k without and with as-of = quiz date, over all questions and per split (dev, test)."""
    out: dict[str, Any] = {"n_recency_questions": n_recency}
    for split in ("all", "dev", "test"):
        rows = [(p, a) for s, p, a in per_q if a and (split == "all" or s == split)]
        n = len(rows)
        out[split] = {
            "n": n,
            "recall_at_k": {m: round(sum(p[m] for p, _ in rows) / n, 4) if n else None for m in METHODS},
            "recall_at_k_as_of": {m: round(sum(a[m] for _, a in rows) / n, 4) if n else None for m in METHODS},
        }
    return out


def _texts(src: Path, indexed: set[str], limit: int | None) -> dict[str, str]:
    out: dict[str, str] = {}
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if limit is not None and n >= limit:
                break
            rec = json.loads(line)
            if rec.get("id") in indexed:
                out[rec["id"]] = rec.get("text", "")
    return out
