"""Answers by what a question asks for: `python -m evals.answer_type --index DIR [--name-bonus X]`.

Asks every RealTime QA H1 question that an indexed article answers (the retrieval protocol's eligible
questions) of the extractive answerer, and counts per split (dev = January-March quiz dates, test = April-June)
and per kind of question (which/who, an amount/number/date, other): the answer retrieved in the top k, the
answer text holding the quiz answer, refusals by the relevance gate and by the near-miss check
(rag/answer_type.py). Two things are read off it: whether the near-miss check refuses questions whose answer
was retrieved (its risk), and what the which/who bonus (Calibration.name_bonus; --name-bonus to sweep it,
on the dev split only) does to answers holding the quiz answer.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from evals.realtimeqa import ARTICLES, QUESTIONS, contains_answer, load_questions
from evals.retrieval import eligible_questions, split_of
from rag import Calibration, RagService, Settings, asks_for_name, expected_answer_type, parse_date

NEAR_MISS = "none states the"  # in the refusal note of a near miss (rag/answer_type.py)
OUTCOMES = (
    "eligible",
    "answer retrieved",
    "answer in the answer",
    "refused: gate",
    "refused: near miss",
    "refused: near miss, answer retrieved",
)


def _texts(path: Path, ids: set[str]) -> dict[str, str]:
    out = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("id") in ids:
                out[d["id"]] = d.get("text", "")
    return out


def kind_of(question: str) -> str:
    if expected_answer_type(question):
        return "amount/number/date"
    return "which/who" if asks_for_name(question) else "other"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--index", type=Path, required=True, help="data dir of an index of RealTime QA articles")
    p.add_argument("--collection", default="articles")
    p.add_argument("--name-bonus", type=float, help="override Calibration.name_bonus (sweep on the dev split)")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--as-of-quiz-date", action="store_true",
                   help="ask each question as of its quiz date, as a reader did then (later articles hidden)")
    args = p.parse_args(argv)
    settings = Settings()
    cal = Calibration.load()
    if args.name_bonus is not None:
        cal = replace(cal, name_bonus=args.name_bonus)
    svc = RagService(
        settings.model_copy(update={"data_dir": args.index, "collection": args.collection}), calibration=cal
    )
    indexed = {a["article_id"] for a in svc.list_articles()}
    questions = eligible_questions(
        load_questions(settings.datasets_dir / QUESTIONS), _texts(settings.datasets_dir / ARTICLES, indexed)
    )
    counts: Counter[tuple[str, str, str]] = Counter()
    chars: dict[str, list[int]] = {"dev": [], "test": []}  # answer sentences' characters (a longer answer holds more)
    for rq in questions:
        q = rq.question
        split, kind = split_of(q), kind_of(q.question)
        as_of = parse_date(q.date) if args.as_of_quiz_date else None
        a = svc.ask(q.question, k=args.k, mode="extractive", as_of=as_of)
        retrieved = any(contains_answer(c.text, q.answer) for c in a.contexts)
        if not a.refused and split in chars:
            chars[split].append(sum(len(x.text) for x in a.sentences))
        seen = ["eligible"]
        seen += ["answer retrieved"] if retrieved else []
        seen += ["answer in the answer"] if not a.refused and contains_answer(a.answer, q.answer) else []
        if a.refused:
            near = NEAR_MISS in a.answer
            seen += ["refused: near miss"] if near else ["refused: gate"]
            seen += ["refused: near miss, answer retrieved"] if near and retrieved else []
        for o in seen:
            for k in (kind, "all"):
                counts[(o, split, k)] += 1
    kinds = ("all", "which/who", "amount/number/date", "other")
    table = {s: {k: {o: counts[(o, s, k)] for o in OUTCOMES} for k in kinds} for s in ("dev", "test")}
    mean_chars = {s: round(sum(v) / len(v)) if v else None for s, v in chars.items()}
    report = {"index": str(args.index), "k": args.k, "name_bonus": cal.name_bonus,
              "as_of_quiz_date": args.as_of_quiz_date, "counts": table,
              "mean_answer_chars": mean_chars}
    print(json.dumps(report, indent=2))
    for s in ("dev", "test"):
        row = table[s]["all"]
        print(
            f"{s}: {row['eligible']} questions, answer retrieved {row['answer retrieved']}, in the answer "
            f"{row['answer in the answer']}, refused by the gate {row['refused: gate']}, by the near-miss check "
            f"{row['refused: near miss']} ({row['refused: near miss, answer retrieved']} with the answer retrieved); "
            f"answers of {mean_chars[s]} characters on average",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
