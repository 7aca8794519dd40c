"""What a date filter costs a question: `python -m evals.bench_dates --index DIR [--questions N]`.

Asks the first N RealTime QA H1 questions of the extractive answerer three ways - no filter, as of the quiz
date, and since the quiz date's month began - on an index of RealTime QA articles, warm, and prints the p50 and
p95 of the whole answer and of the dense search, per way. The first filtered question after a change to the
index also reads every article's day once (rag.service); it is timed apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from evals.realtimeqa import QUESTIONS, load_questions
from rag import RagService, Settings, parse_date


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--index", type=Path, required=True, help="data dir of an index of RealTime QA articles")
    p.add_argument("--collection", default="articles")
    p.add_argument("--questions", type=int, default=40)
    args = p.parse_args(argv)
    settings = Settings()
    svc = RagService(settings.model_copy(update={"data_dir": args.index, "collection": args.collection}))
    qs = [q for q in load_questions(settings.datasets_dir / QUESTIONS) if parse_date(q.date)][: args.questions]
    svc.ask(qs[0].question)  # loads the model, BM25 and the index
    t = time.perf_counter()
    svc.ask(qs[0].question, as_of=parse_date(qs[0].date))
    first = (time.perf_counter() - t) * 1000
    ways = {
        "no filter": lambda d: {},
        "as of the quiz date": lambda d: {"as_of": d},
        "since the quiz month began": lambda d: {"since": d.replace(day=1)},
    }
    for name, kw in ways.items():
        total, dense = [], []
        for q in qs:
            day = parse_date(q.date)
            assert day is not None
            t = time.perf_counter()
            a = svc.ask(q.question, **kw(day))
            total.append((time.perf_counter() - t) * 1000)
            dense.append(a.timings_ms.get("retrieve_dense", 0.0))
        print(f"{name}: answer p50 {statistics.median(total):.0f} ms, p95 {_p(total, 0.95):.0f} ms; dense search "
              f"p50 {statistics.median(dense):.0f} ms, p95 {_p(dense, 0.95):.0f} ms ({len(qs)} questions)")
    print(f"first filtered question after opening the index: {first:.0f} ms (reads every article's day once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
