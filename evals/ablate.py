"""`python -m evals.ablate`: the retrieval ablation table - one row per ranking change, dev and test recall@5.

Runs on an index that `make bench-scale` grew (default .rag/bench-scale, at whatever tier it holds): every
variant of `rag.Ranking` answers the same H1 questions (those whose answer occurs in an indexed search-result
article) through the same index, so only ranking differs. Per row: hybrid recall@5 on the dev split
(quiz dates January-March: the only figures to tune on), on the test split (April-June: reported, never
tuned on), characters of article body returned per question, and warm retrieval p50/p95. Chunking and
chunk headers need a re-embedded index and are not rows here. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from evals.bench_scale import counted_questions, git_commit
from evals.benchutil import md_table, write_section
from evals.metrics import percentile
from evals.realtimeqa import QUESTIONS, RtqaQuestion, contains_answer, load_questions
from evals.retrieval import split_of
from rag import RagService, Ranking, Settings

K = 5
SHIPPED = Ranking()
# One change at a time against what ships; the name says what changed.
VARIANTS: list[tuple[str, Ranking]] = [
    ("shipped", SHIPPED),
    ("MMR lambda 0.85", replace(SHIPPED, mmr_lambda=0.85)),
    ("MMR lambda 0.95", replace(SHIPPED, mmr_lambda=0.95)),
    ("MMR lambda 0.7", replace(SHIPPED, mmr_lambda=0.7)),
    ("candidates 15 per retriever", replace(SHIPPED, candidates=15)),
    ("candidates 60 per retriever", replace(SHIPPED, candidates=60)),
    ("MMR pool 4k", replace(SHIPPED, pool_factor=4, pool_min=20)),
    ("RRF k 20", replace(SHIPPED, rrf_k=20)),
    ("RRF weights dense 1.25 : BM25 1", replace(SHIPPED, w_dense=1.25)),
    ("RRF weights dense 1.5 : BM25 1", replace(SHIPPED, w_dense=1.5)),
    ("RRF weights dense 1 : BM25 1.5", replace(SHIPPED, w_bm25=1.5)),
    ("sentence max-sim list off (shipped before the ablation)", replace(SHIPPED, w_sentence=0.0)),
    ("sentence max-sim list weight 1", replace(SHIPPED, w_sentence=1.0)),
    ("+ title-match list (w 0.25)", replace(SHIPPED, w_title=0.25)),
    ("+ title-match list (w 0.5)", replace(SHIPPED, w_title=0.5)),
    ("+ title-match list (w 1)", replace(SHIPPED, w_title=1.0)),
    ("+ article aggregation (0.3)", replace(SHIPPED, w_article=0.3)),
    ("+ article aggregation (0.1)", replace(SHIPPED, w_article=0.1)),
    ("+ BM25 feedback (5 terms, 3 docs)", replace(SHIPPED, prf_terms=5)),
    ("+ BM25 feedback (10 terms, 5 docs)", replace(SHIPPED, prf_terms=10, prf_docs=5)),
    ("before the ablation (MMR 0.85, no sentence list)", replace(SHIPPED, mmr_lambda=0.85, w_sentence=0.0)),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def changed(r: Ranking) -> str:
    """The fields a variant changes, e.g. "mmr_lambda=1.0" (empty for what ships)."""
    return ", ".join(
        f"{f.name}={getattr(r, f.name)}" for f in fields(r) if getattr(r, f.name) != getattr(SHIPPED, f.name)
    )


def measure(svc: RagService, ranking: Ranking, qs: list[RtqaQuestion]) -> dict[str, Any]:
    hits = {"dev": 0, "test": 0}
    n = {"dev": 0, "test": 0}
    chars, lat = 0, []
    for q in qs[:3]:  # warm
        svc.retrieve(q.question, K, ranking=ranking)
    for q in qs:
        t = time.perf_counter()
        got = svc.retrieve(q.question, K, ranking=ranking)
        lat.append((time.perf_counter() - t) * 1000)
        split = split_of(q)
        if split in hits:  # the body text only: no "also reported by" entries, no headers
            hits[split] += any(contains_answer(p.text, q.answer) for p in got)
            n[split] += 1
        chars += sum(len(p.text) for p in got)
    return {
        "dev": hits["dev"] / max(n["dev"], 1), "test": hits["test"] / max(n["test"], 1),
        "n_dev": n["dev"], "n_test": n["test"], "chars": chars / max(len(qs), 1),
        "p50": percentile(lat, 50), "p95": percentile(lat, 95),
    }


def pool_headroom(svc: RagService, qs: list[RtqaQuestion], depth: int = 30) -> dict[str, dict[str, int]]:
    """Where the shipped ranking's misses at K are: in the hybrid top `depth` (a better ranking of the same
    pool would find them), only in one retriever's top `depth`, or in neither (the retrievers miss them)."""
    out: dict[str, dict[str, int]] = {}
    for q in qs:
        row = out.setdefault(split_of(q), {"questions": 0, f"hit@{K}": 0, f"miss, in hybrid top {depth}": 0,
                                           f"miss, in dense or BM25 top {depth} only": 0, "miss, in neither": 0})
        row["questions"] += 1
        if any(contains_answer(p.text, q.answer) for p in svc.retrieve(q.question, K)):
            row[f"hit@{K}"] += 1
            continue
        found = {m: any(contains_answer(p.text, q.answer)
                        for p in svc.retrieve(q.question, depth, method=m, collapse_copies=False))  # type: ignore[arg-type]
                 for m in ("hybrid", "dense", "bm25")}
        key = (f"miss, in hybrid top {depth}" if found["hybrid"] else
               f"miss, in dense or BM25 top {depth} only" if found["dense"] or found["bm25"] else "miss, in neither")
        row[key] += 1
    return out


def render(rows: list[dict[str, Any]], articles: int, chunks: int, load: tuple[float, ...], commit: str) -> str:
    base = rows[0]
    table = [
        [r["name"], f"{r['dev']:.3f} ({r['dev'] - base['dev']:+.3f})",
         f"{r['test']:.3f} ({r['test'] - base['test']:+.3f})",
         f"{r['chars']:,.0f}", f"{r['p50']:.1f} / {r['p95']:.1f}", r["changed"] or "-"]
        for r in rows
    ]
    return (
        "## Retrieval ablation (`python -m evals.ablate`)\n\n"
        f"One index of {articles:,} RealTime QA articles ({chunks:,} chunks, built by `make bench-scale`); hybrid "
        f"recall@{K} by the contracts' match rule on the H1 questions an indexed article answers: dev = quiz "
        f"dates January-March (n={base['n_dev']}), test = April-June (n={base['n_test']}). Each row changes one "
        "`rag.Ranking` field against what ships (in brackets: the change in recall). At this n one question is "
        f"{100 / max(base['n_dev'], 1):.1f} points of dev. Commit {commit}; 2 cores, load average "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end of the run.\n\n"
        + md_table(
            ["variant", f"dev recall@{K}", f"test recall@{K}", "chars / question", "p50 / p95 ms", "fields"], table
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(".rag/bench-scale"), help="an index made by make bench-scale")
    p.add_argument("--articles", type=int, default=None, help="articles in it (default: as the index says)")
    p.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--headroom", action="store_true",
                   help="only print where the shipped ranking's misses are (in the top-30 pool or not)")
    args = p.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(data_dir=args.data_dir)  # type: ignore[call-arg]
    svc = RagService(settings)
    stats = svc.stats()
    articles = args.articles or int(stats["articles"])
    questions = load_questions(settings.datasets_dir / QUESTIONS)
    qs = counted_questions(settings.datasets_dir, questions, articles)
    log(f"{articles} articles, {stats['chunks']} chunks, {len(qs)} questions")
    if args.headroom:
        print(json.dumps(pool_headroom(svc, qs), indent=1))
        return 0
    rows = []
    for name, ranking in VARIANTS:
        if args.only and name not in args.only:
            continue
        row = {"name": name, "changed": changed(ranking), **measure(svc, ranking, qs), "ranking": asdict(ranking)}
        log(f"{name}: dev {row['dev']:.3f} test {row['test']:.3f} chars {row['chars']:.0f} p95 {row['p95']:.1f}")
        rows.append(row)
    # Index-time: the BM25 text after the article's title (BM25 is rebuilt for it, and back afterwards).
    name = "BM25 text after the article title (contextual header)"
    if not args.only or name in args.only:
        headed = RagService(settings.model_copy(update={"bm25_title_header": True}))
        row = {"name": name, "changed": "bm25_title_header=True", **measure(headed, SHIPPED, qs), "ranking": {}}
        log(f"{name}: dev {row['dev']:.3f} test {row['test']:.3f} chars {row['chars']:.0f} p95 {row['p95']:.1f}")
        rows.append(row)
        headed.close()
        RagService(settings).warm_up()  # the shipped BM25 index back in place
    text = render(rows, articles, int(stats["chunks"]), os.getloadavg(), git_commit())
    print(text)
    if not args.no_write:
        write_section("ablation", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
