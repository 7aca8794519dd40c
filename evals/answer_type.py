"""What the near-miss check costs on real questions: `python -m evals.answer_type --index DIR [--collection C]`.

The check (rag/answer_type.py) refuses a question that asks for an amount, a number or a date when none of the
sentences an answer would quote states one. Its risk is refusing a question the articles do answer. This asks
every RealTime QA H1 question that expects such a value and whose answer is in the retrieved passages (so the
question is answerable from what was found) and counts how each was handled: answered (and whether the
answer text holds the quiz answer), refused by the relevance gate, or refused by the near-miss check.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from evals.realtimeqa import QUESTIONS, contains_answer, load_questions
from evals.retrieval import split_of
from rag import RagService, Settings, expected_answer_type

NEAR_MISS = "none states the"  # in the refusal note of a near miss (rag/answer_type.py)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--index", type=Path, required=True, help="data dir of an index of RealTime QA articles")
    p.add_argument("--collection", default="articles")
    p.add_argument("--questions", type=Path, help=f"default: $RAG_DATASETS_DIR/{QUESTIONS}")
    p.add_argument("-k", type=int, default=5)
    args = p.parse_args(argv)
    settings = Settings()
    svc = RagService(settings.model_copy(update={"data_dir": args.index, "collection": args.collection}))
    questions = load_questions(args.questions or settings.datasets_dir / QUESTIONS)
    counts: Counter[tuple[str, str]] = Counter()
    rows = []
    for q in questions:
        kind = expected_answer_type(q.question)
        if kind is None:
            continue
        counts[("typed", split_of(q))] += 1
        a = svc.ask(q.question, k=args.k, mode="extractive")
        if not any(contains_answer(c.text, q.answer) for c in a.contexts):
            continue  # the answer was not retrieved: nothing to answer from
        outcome = (
            ("refused: near miss" if NEAR_MISS in a.answer else "refused: gate")
            if a.refused
            else ("answered, holds the answer" if contains_answer(a.answer, q.answer) else "answered, without it")
        )
        counts[(outcome, split_of(q))] += 1
        counts[("answer retrieved", split_of(q))] += 1
        rows.append({"id": q.id, "split": split_of(q), "kind": kind, "outcome": outcome, "question": q.question})
    splits = ("dev", "test")
    keys = [
        "typed",
        "answer retrieved",
        "answered, holds the answer",
        "answered, without it",
        "refused: gate",
        "refused: near miss",
    ]
    table = {k: {s: counts[(k, s)] for s in splits} for k in keys}
    print(json.dumps({"index": str(args.index), "k": args.k, "counts": table, "questions": rows}, indent=2))
    print(
        "H1 questions expecting an amount, a number or a date (dev / test): "
        + "; ".join(f"{k} {table[k]['dev']} / {table[k]['test']}" for k in keys),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
