"""`python -m evals.brief_demo`: issue 15's two questions over the seed article plus the 2025 Russia-Ukraine talks.

Indexes corpus/ (the seed article) and the RealTime QA 2025 articles listed in
evals/datasets/russia_talks_articles.txt into $RAG_DATA_DIR/evals/index-russia-talks (reused when there), then
asks "What does Russia want?" and "What is the latest news on the ceasefire?" of the extractive answerer and
prints each answer as the CLI does: grouped by article under source and date, every sentence with its [n], and
each citation's title, source, date and quoted span. A demonstration of the news brief at a few hundred chunks,
not an eval split: its answers are shown, never scored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.golden import listed_ids
from evals.realtimeqa import articles_path, write_ids_subset
from rag import ConfigError, RagService, Settings, iso_date

LISTING = Path(__file__).resolve().parent / "datasets" / "russia_talks_articles.txt"
QUESTIONS = ("What does Russia want?", "What is the latest news on the ceasefire?")


def demo_service(settings: Settings) -> RagService:
    """A service over corpus/ plus the listed articles, ingested into its own index."""
    src = articles_path(settings.datasets_dir)
    if not src.is_file():
        raise ConfigError(f"The demo reads its articles from {src}, which is absent - set RAG_DATASETS_DIR to the "
                          "folder holding realtimeqa-2025/.")
    index_dir = settings.evals_dir / "index-russia-talks"
    subset = index_dir / "russia-talks-articles.jsonl"
    if not subset.is_file():
        write_ids_subset(settings.datasets_dir, subset, listed_ids(LISTING))
    svc = RagService(settings.model_copy(update={"data_dir": index_dir, "collection": "russia_talks"}))
    svc.ingest([settings.corpus_dir, subset], sync=True)
    return svc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("questions", nargs="*", default=list(QUESTIONS), help="questions to ask instead of the two")
    args = p.parse_args(argv)
    svc = demo_service(Settings())
    print(f"index: {svc.stats()['articles']} articles, {svc.stats()['chunks']} chunks\n")
    for q in args.questions:
        a = svc.ask(q, mode="extractive")
        print(f"Q: {q}\n\n{a.answer}\n")
        for c in a.citations:
            where = f"{c.source or 'unknown source'}, {iso_date(c.published) or 'undated'}"
            print(f"  [{c.n}] {c.title} - {where}\n      \"{c.quote}\" (chars {c.start}-{c.end})")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
