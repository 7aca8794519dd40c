"""Learn rag/boilerplate.json: lines repeated across unrelated stories of one site in RealTime QA 2025.

`python -m evals.learn_boilerplate [--write]`. The news golden set's own articles (news_articles.txt) are left
out, so the boilerplate rate measured on them is not fitted to them. A line counts when it occurs in at least
three stories of one site (articles sharing three or more lines are copies of one story and count once).
"""

from __future__ import annotations

import argparse
import json
import sys
from urllib.parse import urlparse

from evals.golden import NEWS_PATH, corpus_ids
from evals.metrics import repeated_lines
from evals.realtimeqa import iter_articles
from rag import Settings
from rag.sentences import BOILERPLATE_FILE, line_key

MIN_STORIES = 3
MAX_LINE_CHARS = 300  # a repeated paragraph longer than this is reporting reused, not page furniture


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--write", action="store_true", help=f"write {BOILERPLATE_FILE}")
    args = p.parse_args(argv)
    held_out = set(corpus_ids(NEWS_PATH) or [])
    arts = [(urlparse(r.get("url", "")).netloc.removeprefix("www."), str(r.get("text", "")))
            for r in iter_articles(Settings().datasets_dir) if r.get("id") not in held_out]
    lines = sorted(ln for ln in repeated_lines(arts, MIN_STORIES) if len(ln) <= MAX_LINE_CHARS)
    assert all(ln == line_key(ln) for ln in lines[:50])  # the metric's and the answerer's keys agree
    out = {"fitted_on": f"RealTime QA 2025 articles.jsonl.gz ({len(arts)} articles; the news golden set's "
                        f"{len(held_out)} held out); lines in >= {MIN_STORIES} stories of one site",
           "lines": lines}
    print(f"{len(lines)} boilerplate lines from {len(arts)} articles", file=sys.stderr)
    if args.write:
        BOILERPLATE_FILE.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
