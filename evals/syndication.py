"""`python -m evals.syndication`: syndicated-copy clusters in the RealTime QA articles, and collapsing's effect."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from evals.realtimeqa import ARTICLES, QUESTIONS, contains_answer, load_questions
from rag import RagService
from rag.syndication import THRESHOLD, WINDOW_DAYS, clusters, signature

if TYPE_CHECKING:
    from evals.retrieval import RetrievalQuestion

SWEEP = ((0.4, WINDOW_DAYS), (0.5, None), (0.5, WINDOW_DAYS), (0.6, WINDOW_DAYS), (0.7, WINDOW_DAYS),
         (0.8, WINDOW_DAYS))


def _iso(published: str) -> str:
    return published.replace("/", "-")[:10] if published else ""


def load(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if limit is not None and n >= limit:
                break
            out.append(json.loads(line))
    return out


def summarise(heads: dict[str, str], meta: dict[str, dict[str, Any]], examples: int) -> dict[str, Any]:
    sizes = Counter(heads.values())
    multi = {h: n for h, n in sizes.items() if n > 1}
    members: dict[str, list[str]] = {}
    for aid, h in heads.items():
        if h in multi:
            members.setdefault(h, []).append(aid)
    shown = sorted(multi, key=lambda h: (-multi[h], h))[:examples]
    return {
        "clusters": len(multi),
        "articles_in_clusters": sum(multi.values()),
        "copies_collapsed": sum(multi.values()) - len(multi),  # articles that give up their slot
        "largest": max(multi.values(), default=0),
        "sizes": {str(k): v for k, v in sorted(Counter(multi.values()).items())},
        "examples": [
            [
                {"id": aid, "source": urlparse(meta[aid]["url"]).netloc, "published": _iso(meta[aid]["published"]),
                 "title": meta[aid]["title"][:90], "canonical": aid == h}
                for aid in sorted(members[h], key=lambda a: (_iso(meta[a]["published"]), a))
            ]
            for h in shown
        ],
    }


def questions_with_copies(heads: dict[str, str], texts: dict[str, str], questions_file: Path) -> dict[str, int]:
    """How many quiz questions have two or more articles of one cluster among their own search results
    (all questions with results, and those whose answer occurs in one of them: the retrieval test's set)."""
    out = {"with_results": 0, "with_copies": 0, "eligible": 0, "eligible_with_copies": 0}
    for q in load_questions(questions_file):
        ids = [a for a in q.search_result_ids if a in heads]
        if not ids:
            continue
        sizes = Counter(heads[a] for a in ids)
        copies = max(sizes.values()) > 1
        eligible = any(contains_answer(texts[a], q.answer) for a in ids)
        out["with_results"] += 1
        out["with_copies"] += copies
        out["eligible"] += eligible
        out["eligible_with_copies"] += eligible and copies
    return out


def count_clusters(path: Path, limit: int | None = None, examples: int = 6, sweep: bool = True) -> dict[str, Any]:
    """Sign every article, cluster them with the shipped rule, and (sweep) with the alternatives measured."""
    arts = load(path, limit)
    meta = {a["id"]: a for a in arts}
    t0 = time.perf_counter()
    records = {a["id"]: (signature(a.get("text", "")), _iso(a.get("published", ""))) for a in arts}
    t1 = time.perf_counter()
    heads = clusters(records)
    t2 = time.perf_counter()
    out: dict[str, Any] = {
        "articles": len(arts),
        "threshold": THRESHOLD,
        "window_days": WINDOW_DAYS,
        "unsigned_short": sum(1 for s, _ in records.values() if not s),
        **summarise(heads, meta, examples),
        "seconds": {"signatures": round(t1 - t0, 2), "clusters": round(t2 - t1, 2), "total": round(t2 - t0, 2)},
    }
    questions = path.parent / Path(QUESTIONS).name
    if questions.is_file():
        out["questions"] = questions_with_copies(heads, {a["id"]: a.get("text", "") for a in arts}, questions)
    if sweep:
        rows = []
        for threshold, window in SWEEP:
            s = summarise(clusters(records, threshold, window), meta, 0)
            rows.append({"threshold": threshold, "window_days": window, "clusters": s["clusters"],
                         "articles_in_clusters": s["articles_in_clusters"], "largest": s["largest"]})
        out["sweep"] = rows
    return out


def collapse_table(svc: RagService, qs: Sequence[RetrievalQuestion], k: int, methods: Sequence[str]) -> dict[str, Any]:
    """Recall@k and characters returned per question with collapsing on and off (the same index and questions).

    A hit and the characters count only returned passage text, never the "also reported by" entries.
    """
    out: dict[str, Any] = {"n": len(qs), "index_has_clusters": svc.stats()["schema_version"] >= 2}
    for state in (True, False):
        hits = dict.fromkeys(methods, 0)
        chars = dict.fromkeys(methods, 0)
        clustered = dict.fromkeys(methods, 0)  # top-k passages of an article in a cluster of 2+
        copies = dict.fromkeys(methods, 0)  # top-k passages of a second article of a cluster already there
        for rq in qs:
            for m in methods:
                got = svc.retrieve(rq.question.question, k, method=m, collapse_copies=state)[:k]  # type: ignore[arg-type]
                hits[m] += any(contains_answer(p.text, rq.question.answer) for p in got)
                chars[m] += sum(len(p.text) for p in got)
                clustered[m] += sum(1 for p in got if int(p.metadata.get("dup_n") or 1) > 1)
                lead: dict[str, str] = {}
                for p in got:
                    cluster = str(p.metadata.get("dup_of") or p.article_id)
                    copies[m] += lead.setdefault(cluster, p.article_id) != p.article_id
        n = len(qs) or 1
        out["on" if state else "off"] = {
            "recall_at_k": {m: round(hits[m] / n, 4) for m in methods},
            "chars_per_question": {m: round(chars[m] / n) for m in methods},
            "clustered_passages_per_question": {m: round(clustered[m] / n, 3) for m in methods},
            "copy_slots_per_question": {m: round(copies[m] / n, 3) for m in methods},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    default = Path(os.environ.get("RAG_DATASETS_DIR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    ap = argparse.ArgumentParser(prog="python -m evals.syndication", description=__doc__)
    ap.add_argument("--articles-file", type=Path, default=default / ARTICLES)
    ap.add_argument("--limit", type=int, default=None, help="only the first N articles")
    ap.add_argument("--examples", type=int, default=6)
    ap.add_argument("--no-sweep", action="store_true", help="skip the threshold/window comparison")
    args = ap.parse_args(argv)
    if not args.articles_file.is_file():
        print(f"error: {args.articles_file} not found - set RAG_DATASETS_DIR or pass --articles-file", file=sys.stderr)
        return 1
    print(json.dumps(count_clusters(args.articles_file, args.limit, args.examples, not args.no_sweep), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
