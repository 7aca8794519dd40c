"""rag eval retrieval --as-of-question-date: the split rule and the without/with table."""

from __future__ import annotations

from evals.realtimeqa import RtqaQuestion
from evals.retrieval import _as_of_table, split_of


def _q(day: str) -> RtqaQuestion:
    return RtqaQuestion("id", "q?", "a", (), day)


def test_split_by_quiz_date() -> None:
    assert [split_of(_q(d)) for d in ("2025/01/01", "2025/03/31", "2025/04/01", "2025/06/30", "")] == [
        "dev", "dev", "test", "test", "undated"
    ]


def test_as_of_table_counts_each_split() -> None:
    hit = {"dense": True, "bm25": False, "hybrid": True}
    miss = {"dense": False, "bm25": False, "hybrid": False}
    t = _as_of_table([("dev", hit, miss), ("dev", miss, hit), ("test", miss, hit), ("undated", hit, {})], 2)
    assert t["all"]["n"] == 3, "a question without a quiz date is left out of the as-of table"
    assert t["dev"]["recall_at_k"]["hybrid"] == 0.5 and t["dev"]["recall_at_k_as_of"]["hybrid"] == 0.5
    assert t["test"]["recall_at_k"]["dense"] == 0.0 and t["test"]["recall_at_k_as_of"]["dense"] == 1.0
    assert t["n_recency_questions"] == 2
