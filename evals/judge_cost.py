"""What the judge costs per LLM answer: `python -m evals.judge_cost [--answers N]` prints ms per answer.

Each answer is 6 sentences citing 5 passages from different RealTime QA articles (the seed article when the
dataset is absent), each passage the article's longest chunk as ingest cuts it (up to the chunk size, 800
characters by default); the model is loaded (warm), but every answer brings new passages, so each is encoded
once, as in a real answer. It also prints what is left after the answer when the passages were encoded while the
model wrote, as rag.llm.LLMAnswerer does: the answer's sentences, the features and the quotes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

from rag import Settings, SupportJudge
from rag.chunking import Chunker
from rag.citations import DraftSentence, Renumberer
from rag.types import Article, Passage
from rag.verify import verify

SENTENCES, PASSAGES = 6, 5  # the budget: up to 6 sentences, 5 passages, under 200 ms


def _passages(texts: list[str], chunker: Chunker) -> list[Passage]:
    """One passage per article as retrieval returns them: the article's longest chunk from the ingest chunker
    (chunk size 800 with sentence-aware breaks, so at most 800 characters)."""
    out = []
    for n, text in enumerate(texts):
        article = Article(f"a{n}", text, "", True, content_hash="0" * 10)
        c = max(chunker.split(article), key=lambda c: len(c.text))
        out.append(Passage(c.chunk_id, c.article_id, c.text, c.start, c.end, list(c.sentences), {}))
    return out


def _sentence(p: Passage, nth: int) -> str:
    """An answer-like sentence: the passage's nth sentence of 40-200 characters (its first words dropped)."""
    ok = [p.text[s:e] for s, e in p.sentences if 40 <= e - s <= 200] or [p.text[:200]]
    return " ".join(ok[nth % len(ok)].split()[2:]) or ok[0]


def _articles(settings: Settings, n: int) -> list[str]:
    path = settings.datasets_dir / "realtimeqa-2025" / "articles.jsonl.gz"
    if path.is_file():
        out = []
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                text = json.loads(line).get("text", "")
                if len(text) > 2 * settings.chunk_size:
                    out.append(text)
                if len(out) == n:
                    return out
    seed = next(Path("corpus").glob("*.txt")).read_text(encoding="utf-8")
    return [seed[i * 300 :] for i in range(n)]  # shifted copies: distinct passages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--answers", type=int, default=10)
    args = p.parse_args(argv)
    settings = Settings()
    texts = _articles(settings, PASSAGES * (2 * args.answers + 1))
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    judge = SupportJudge()
    def answer(a: int) -> tuple[list[DraftSentence], list[Passage]]:
        passages = _passages(texts[a * PASSAGES : (a + 1) * PASSAGES], chunker)
        claims = [_sentence(passages[i % PASSAGES], i // PASSAGES) for i in range(SENTENCES)]
        drafts = [DraftSentence(c, [i % PASSAGES, (i + 1) % PASSAGES] if i % 2 else [i % PASSAGES])
                  for i, c in enumerate(claims)]
        return drafts, passages

    times, after = [], []
    for a in range(args.answers + 1):
        drafts, passages = answer(a)
        t = time.perf_counter()
        verify(drafts, passages, Renumberer(PASSAGES), judge)
        if a:  # the first answer loads the model
            times.append((time.perf_counter() - t) * 1000)
    for a in range(args.answers + 1, 2 * args.answers + 1):  # new passages, encoded "while the model wrote"
        drafts, passages = answer(a)
        judge.prepare([], [p.text for p in passages])
        t = time.perf_counter()
        verify(drafts, passages, Renumberer(PASSAGES), judge)
        after.append((time.perf_counter() - t) * 1000)
    model = []  # the same passages through the plain embedder: what the model alone costs right now
    for a in range(1, args.answers + 1):
        t = time.perf_counter()
        judge.embedder.encode([q.text for q in _passages(texts[a * PASSAGES : (a + 1) * PASSAGES], chunker)])
        model.append((time.perf_counter() - t) * 1000)
    print(f"judge per answer ({SENTENCES} sentences, {PASSAGES} chunks of up to {settings.chunk_size} chars, warm, "
          f"{args.answers} answers): p50 {statistics.median(times):.0f} ms, max {max(times):.0f} ms; "
          f"the model alone on the same passages: p50 {statistics.median(model):.0f} ms; "
          f"left after the answer when the passages were encoded while the model wrote: "
          f"p50 {statistics.median(after):.0f} ms, max {max(after):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
