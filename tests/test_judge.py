"""The offline judge: accepts verbatim sentences, flags perturbed claims; agreement on QAGS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rag import SupportJudge
from rag.chunking import split_sentences
from tests.conftest import CORPUS, datasets_dir

ARTICLE = next(CORPUS.glob("*.txt")).read_text(encoding="utf-8")
QAGS = datasets_dir() / "qags" / "mturk_cnndm.jsonl"

PERTURBED = {
    "negated": "Moscow appears interested in a swift settlement.",
    "negation dropped": "Russia is seeking a peace agreement.",
    "negation added": "Russia has not consistently rejected Western security guarantees for Ukraine.",
    "number swapped": "The heads of seven European spy agencies told Reuters news agency in recent days.",
    "date swapped": "Moscow could face very high financial risks in the second half of 2031.",
    "year swapped": "Washington is pressing Ukraine to conclude a peace agreement by summer 2029.",
    "place swapped": "The latest round of negotiations took place this week in Vienna.",
    "name swapped": "The Washington-based Heritage Foundation said Washington is pressing Ukraine.",
    "other article": "The central bank raised interest rates by half a point on Thursday to fight inflation.",
    "other article 2": "The striker scored twice in the second half as the home side won the cup final.",
}


@pytest.fixture(scope="module")
def judge() -> SupportJudge:
    return SupportJudge()


def test_threshold_is_calibrated(judge: SupportJudge) -> None:
    assert 0.0 < judge.threshold < 1.0
    assert "QAGS" in judge.params.fitted_on


def test_accepts_verbatim_sentences(judge: SupportJudge) -> None:
    sentences = [ARTICLE[s:e] for s, e in split_sentences(ARTICLE) if len(ARTICLE[s:e].split()) >= 6]
    assert len(sentences) >= 15
    scores = judge.score_many([(s, ARTICLE) for s in sentences])
    rejected = [s for s, p in zip(sentences, scores, strict=True) if p < judge.threshold]
    assert not rejected, rejected


@pytest.mark.parametrize("kind", sorted(PERTURBED))
def test_flags_perturbed_claims(judge: SupportJudge, kind: str) -> None:
    claim = PERTURBED[kind]
    assert not judge.supported(claim, ARTICLE), f"{kind}: {judge.score(claim, ARTICLE):.3f}"


def test_scores_are_probabilities_and_empty_is_unsupported(judge: SupportJudge) -> None:
    s = judge.score("Russia is not seeking a peace agreement.", ARTICLE)
    assert 0.0 <= s <= 1.0
    assert judge.score("", ARTICLE) == 0.0
    assert judge.score("Russia is not seeking a peace agreement.", "") == 0.0


@pytest.mark.skipif(not QAGS.is_file(), reason=f"QAGS not found at {QAGS}: judge agreement not measured")
def test_eval_judge_cli_reports_agreement_against_baselines() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", "judge", "--qags", str(QAGS), "--limit", "40", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    res = json.loads(out.stdout)
    assert res["n"] > 100
    assert set(res["baselines"]) == {"unigram_overlap", "embedding_cosine", "trigram_copy"}
    for v in [res, *res["baselines"].values()]:
        assert 0.0 <= v["balanced_accuracy"] <= 1.0 and 0.0 <= v["roc_auc"] <= 1.0
    assert res["roc_auc"] > 0.7 and res["balanced_accuracy"] > 0.6
