"""Pure scoring functions and metric classes of the eval suite, on inputs that can make them fail."""

from __future__ import annotations

import pytest

from evals.metrics import (
    CitationPrecision,
    CitationRecall,
    Faithfulness,
    ItemResult,
    KeyFactRecall,
    QuoteExact,
    RefusalPrecision,
    RefusalRecall,
    RetrievalMRR,
    RetrievalRecall,
    alce_citation_scores,
    default_metrics,
    key_fact_recall,
    ndcg_at_k,
    passage_relevant,
    recall_at_k,
    reciprocal_rank,
    summarise,
    token_f1,
)


def contains(claim: str, evidence: str) -> bool:
    """A toy support rule for the metric tests: the claim occurs in the evidence."""
    return claim in evidence


def item(**kw: object) -> ItemResult:
    base: dict[str, object] = dict(
        refuse=False,
        refused=False,
        answer="Talks were in Geneva [1].",
        key_facts=(("Geneva",),),
        evidence="talks took place in Geneva",
        contexts=["x", "The talks took place in Geneva this week."],
        sentences=[("Talks were in Geneva", [1])],
        citations={1: ("Talks were in Geneva", "Talks were in Geneva.")},
        quotes_exact=[True],
        latency_ms=10.0,
    )
    base.update(kw)
    return ItemResult(**base)  # type: ignore[arg-type]


def test_ranking_functions() -> None:
    assert recall_at_k([False, False, True], 2) == 0.0
    assert recall_at_k([False, False, True], 3) == 1.0
    assert reciprocal_rank([False, True]) == 0.5
    assert reciprocal_rank([False, False]) == 0.0
    assert ndcg_at_k([True, False], 5) == 1.0
    assert ndcg_at_k([False, True], 5) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at_k([False, False], 5) == 0.0


def test_answer_functions() -> None:
    assert key_fact_recall("Talks in GENEVA", (("geneva",), ("Vienna", "Paris"))) == 0.5
    assert key_fact_recall("“neutral” buffer", (('"neutral"',),)) == 1.0
    assert token_f1("the talks in Geneva", "talks in Geneva") == 1.0
    assert token_f1("Vienna", "Geneva") == 0.0
    assert 0 < token_f1("talks in Geneva this week", "talks in Geneva") < 1


def test_passage_relevance_needs_the_evidence() -> None:
    ev = "The latest round of negotiations took place this week in Geneva"
    assert passage_relevant("Intro. The latest round of negotiations took place this week in Geneva, but", ev)
    # cut by a chunk edge: most of it, in order, still counts
    assert passage_relevant("... of negotiations took place this week in Geneva, but one chief", ev)
    assert not passage_relevant("Negotiations took place in Vienna last month.", ev)


def test_alce_citation_recall_and_precision() -> None:
    # one sentence cites two passages; only the first supports it: the second is irrelevant.
    rec, prec, n, n_cit = alce_citation_scores([("A b", ["A b c", "zzz"])], contains)
    assert (rec, prec, n, n_cit) == (1.0, 0.5, 1, 2)
    # unsupported sentence: recall 0 and its citations count against precision.
    assert alce_citation_scores([("Q", ["A"])], contains)[:2] == (0.0, 0.0)
    # two citations needed jointly: both relevant.
    assert alce_citation_scores([("A\nB", ["A", "B"])], contains)[:2] == (1.0, 1.0)


def test_metric_classes_score_items() -> None:
    good = item()
    assert RetrievalRecall(1).score(good) == 0.0 and RetrievalRecall(2).score(good) == 1.0
    assert RetrievalMRR().score(good) == 0.5
    assert KeyFactRecall().score(good) == 1.0
    assert KeyFactRecall().score(item(refused=True)) == 0.0
    assert Faithfulness(contains).score(good) == 1.0
    assert Faithfulness(contains).score(item(citations={1: ("Talks were in Vienna", "x")})) == 0.0
    assert CitationRecall(contains).score(item(sentences=[("Talks were in Geneva", [])])) == 0.0
    assert CitationPrecision(contains).score(good) == 1.0
    assert QuoteExact().score(item(quotes_exact=[True, False])) == 0.0


def test_refusal_metrics_and_summary() -> None:
    items = [
        item(refuse=True, refused=True),
        item(refuse=True, refused=False),
        item(refuse=False, refused=True),
        item(latency_ms=30.0),
    ]
    assert [RefusalPrecision().score(i) for i in items] == [1.0, None, 0.0, None]
    assert [RefusalRecall().score(i) for i in items] == [1.0, 0.0, None, None]
    overall, per_item = summarise(default_metrics(contains, k=5), items)
    assert overall["refusal_precision"] == 0.5 and overall["refusal_recall"] == 0.5
    assert overall["latency_p50_ms"] == 10.0 and overall["latency_p95_ms"] > 10.0
    assert all(not k.startswith("latency") for d in per_item for k in d)
    assert "answer_key_fact_recall" not in per_item[0]  # not applicable to a refuse item
