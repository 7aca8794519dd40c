"""The offline judge: accepts verbatim sentences, does not flag faithful paraphrases, flags perturbed claims;
three-way verdicts on answer sentences; agreement on QAGS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import SupportJudge
from rag.chunking import split_sentences
from rag.citations import DraftSentence, Renumberer
from rag.types import Passage, Sentence
from rag.verify import verify
from tests.conftest import CORPUS, datasets_dir

ARTICLE = next(CORPUS.glob("*.txt")).read_text(encoding="utf-8")
QAGS = datasets_dir() / "qags" / "mturk_cnndm.jsonl"
QAGS_XSUM = datasets_dir() / "qags" / "mturk_xsum_dev.jsonl"

# Paraphrases (new wording, facts kept) of the seed article, and the same with one fact changed.
PARAPHRASES = {
    "five chiefs": "Five European intelligence chiefs told Reuters that Moscow does not seem interested in "
    "settling the war quickly.",
    "financial risk": "One intelligence chief warned that sanctions and restricted access to capital markets could "
    "bring Moscow very high financial risks in the second half of 2026.",
    "geneva": "The most recent negotiations were held in Geneva this week.",
}
SWAPPED = {
    "five chiefs": PARAPHRASES["five chiefs"].replace("Five", "Seven"),
    "financial risk": PARAPHRASES["financial risk"].replace("2026", "2027"),
    "geneva": PARAPHRASES["geneva"].replace("Geneva", "Istanbul"),
}

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


def test_calibration_names_both_styles_and_a_band_around_the_threshold(judge: SupportJudge) -> None:
    assert "mturk_cnndm.jsonl" in judge.params.fitted_on and "mturk_xsum_dev.jsonl" in judge.params.fitted_on
    low, high = judge.band
    assert low < judge.threshold < high
    assert judge.verdict(high) == "supported" and judge.verdict(low) == "uncertain"
    assert judge.verdict(judge.threshold) == "uncertain" and judge.verdict(low - 0.01) == "not supported"


@pytest.mark.parametrize("kind", sorted(PARAPHRASES))
def test_faithful_paraphrase_is_not_flagged_and_a_changed_fact_is(judge: SupportJudge, kind: str) -> None:
    faithful, swapped = judge.score(PARAPHRASES[kind], ARTICLE), judge.score(SWAPPED[kind], ARTICLE)
    assert judge.verdict(faithful) != "not supported", f"{kind}: {faithful:.3f}"
    assert judge.verdict(swapped) == "not supported", f"{kind}: {swapped:.3f}"


def test_answer_sentences_carry_three_way_verdicts(judge: SupportJudge) -> None:
    start = ARTICLE.index("The latest round")
    end = ARTICLE.index("DONETSK CONCESSIONS?")
    spans = [(start + s, start + e) for s, e in split_sentences(ARTICLE[start:end])]
    passage = Passage("c1", "a1", ARTICLE[start:end], start, end, spans, {"title": "t"})
    verbatim = ARTICLE[spans[0][0] : spans[0][1]]
    drafts = [DraftSentence(verbatim, [0]), DraftSentence(SWAPPED["geneva"], [0]), DraftSentence("Plain.", [])]
    out = verify(drafts, [passage], Renumberer(1), judge, attach=False)
    assert [s.verdict for s in out.sentences] == ["supported", "not supported", "not supported"]
    assert [s.supported for s in out.sentences] == [True, False, False]
    (c,) = out.citations
    assert c.quote == ARTICLE[c.start : c.end] and "Geneva" in c.quote  # the best-aligned sentence is quoted
    uncertain = Sentence("x", [1], verdict="uncertain")
    assert uncertain.supported is False and Sentence("y", [1], supported=False).verdict == "not supported"


def test_an_answer_is_judged_in_its_writer_s_style(judge: SupportJudge) -> None:
    """The gate reads each sentence halfway to its answer's mean: a paraphrasing answer is judged as a
    paraphrase, and a sentence that does not copy, among sentences that do, is judged as a copy would be."""
    paraphrases = [(p, ARTICLE) for p in PARAPHRASES.values()]
    together = judge.score_answer(paraphrases)
    assert all(judge.verdict(p) != "not supported" for p in together), together
    assert judge.score_answer(paraphrases[:1]) == pytest.approx([judge.score(*paraphrases[0])])  # one is its own
    copies = [(ARTICLE[s:e], ARTICLE) for s, e in split_sentences(ARTICLE) if len(ARTICLE[s:e].split()) >= 8][:3]
    among_copies = judge.score_answer([*copies, paraphrases[0]])
    assert among_copies[-1] < judge.score(*paraphrases[0]) - 0.1, among_copies  # judged nearer the copying style
    assert all(judge.verdict(p) == "supported" for p in among_copies[:3])
    assert judge.score_answer([("", ARTICLE), paraphrases[0]])[0] == 0.0


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


def test_a_copied_claim_outscores_its_contradiction_and_empty_is_unsupported(judge: SupportJudge) -> None:
    assert judge.score(PARAPHRASES["geneva"], ARTICLE) > judge.score(PERTURBED["place swapped"], ARTICLE)
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
    assert res["roc_auc"] > 0.7 and res["balanced_accuracy"] > 0.6
    conf = res["confusion_at_threshold"]
    assert sum(conf.values()) == res["n"]
    assert res["in_sample"] and "fit on one style" in res["cross_style_at_fit"]["note"]


@pytest.mark.skipif(not QAGS_XSUM.is_file(), reason=f"QAGS XSum not found at {QAGS_XSUM}: not measured")
def test_judge_beats_word_overlap_on_paraphrased_summaries(judge: SupportJudge) -> None:
    from evals.judge_eval import evaluate_judge

    res = evaluate_judge(QAGS_XSUM, judge=judge)
    assert res["n"] == 121
    assert res["roc_auc"] > res["baselines"]["unigram_overlap"]["roc_auc"] + 0.03
    assert res["balanced_accuracy"] > res["baselines"]["unigram_overlap"]["balanced_accuracy"] + 0.03


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"claims": [{"claim": "a", "supported": true}, {"claim": "b", "supported": false}]}', [True, False]),
        ('```json\n{"claims": [{"claim": "a", "supported": "yes"}]}\n```', [True]),
        ('Sure! Here it is: [{"claim": "a", "supported": "not supported"}] Hope that helps.', [False]),
        ('{"claim": "a", "verdict": "supported"}', [True]),
        ("The passage supports the statement.", None),
        ('{"claims": [{"claim": "a", "supported": "maybe"}]}', None),
    ],
)
def test_llm_judge_reads_strict_json_wherever_the_model_puts_it(reply: str, expected: list[bool] | None) -> None:
    from evals.judge_llm import parse_verdicts

    assert parse_verdicts(reply) == expected


def test_llm_judge_scores_the_share_of_supported_claims_and_counts_unreadable_replies() -> None:
    from evals.judge_llm import LLMJudge

    class Scripted:  # the chat model's invoke(prompt) -> reply; a fake is allowed for the model only
        def __init__(self, replies: list[str]) -> None:
            self.replies, self.prompts = replies, []

        def invoke(self, prompt: str, **kwargs: object) -> str:
            self.prompts.append(prompt)
            return self.replies.pop(0)

    model = Scripted(['{"claims": [{"supported": true}, {"supported": false}, {"supported": true}, '
                      '{"supported": true}]}', "I cannot answer that."])
    judge = LLMJudge(model)
    assert judge.score("Talks were in Geneva.", ARTICLE[:500]) == 0.75
    assert judge.score("Talks were in Vienna.", ARTICLE[:500]) == 0.0 and judge.parse_failures == 1
    assert "Statement: Talks were in Geneva." in model.prompts[0] and ARTICLE[:100] in model.prompts[0]


def test_llm_judge_without_a_model_is_a_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", "judge", "--qags", str(QAGS), "--judge", "llm", "--limit", "3"],
        capture_output=True, text=True, timeout=120, env=env | {"RAG_DATA_DIR": str(tmp_path)}, check=False,
    )
    assert out.returncode != 0 and not out.stdout
    assert out.stderr.strip().splitlines() == [
        "error: No LLM is configured for --judge llm - set RAG_LLM_BASE_URL (and RAG_LLM_MODEL) or OPENAI_API_KEY."
    ]


def test_the_judge_reads_its_own_middle_layer_model() -> None:
    from rag.embeddings import LocalMiniLMEmbeddings
    from rag.errors import ConfigError
    from rag.judge_features import JUDGE_LAYERS

    assert SupportJudge().embedder.layers == JUDGE_LAYERS < 6
    with pytest.raises(ConfigError, match="layer"):
        SupportJudge(LocalMiniLMEmbeddings())  # the index's full model is not the judge's


def test_the_gate_learns_which_expert_explains_a_label_not_only_the_style() -> None:
    """A copying-style sentence that does not copy is mostly unsupported: the extractive expert says so and
    the paraphrase expert cannot. EM moves such sentences' gate towards the extractive expert."""
    import numpy as np

    from evals.judge_cv import Data, fit_judge
    from rag.judge import FEATURES, GATE

    rng = np.random.RandomState(0)
    n = 600
    style = (np.arange(n) >= 400).astype(int)  # 400 copying (0), 200 paraphrasing (1)
    x = rng.normal(size=(n, len(FEATURES)))
    col = {f: i for i, f in enumerate(FEATURES)}
    odd = (style == 0) & (rng.rand(n) < 0.15)  # copying-style answers' sentences that do not copy
    shift = np.where(style == 0, 1.5, -1.5) - 3.0 * odd
    for f in GATE:
        x[:, col[f]] += shift
    y = np.where(style == 0, x[:, col["coverage"]] + 0.5 * rng.normal(size=n) > -1.0,
                 x[:, col["novel_content"]] + 0.5 * rng.normal(size=n) < 0.0).astype(int)
    y[odd] = (rng.rand(int(odd.sum())) < 0.1).astype(int)
    d = Data(x, y, style, np.arange(n), FEATURES)
    before = fit_judge(d, gate_em=0).gate.prob(x)[odd].mean()
    after = fit_judge(d).gate.prob(x)[odd].mean()
    assert after > before + 0.05


def test_a_negated_copy_is_found_clause_by_clause() -> None:
    from rag.judge_features import negated_copy
    from rag.text import words

    evidence = [words(s) for s in (
        "Russia is not seeking a quick peace deal with Ukraine, four officials said.",
        "Campaigners called the driver's behaviour selfish.",
        "The hostess said she did not think too much about it at all.",
        "The striker has rejected a new contract with the club.",
    )]

    def vetoed(claim: str) -> bool:
        return negated_copy([words(c) for c in claim.split(" but ")] + [words(claim)], evidence)

    assert vetoed("Russia is seeking a quick peace deal with Ukraine")  # the source's negation dropped
    assert vetoed("Campaigners never called the driver's behaviour selfish")  # a negation added
    assert not vetoed("Russia is not seeking a quick peace deal with Ukraine")
    # "didn't" is "did not"; the claim's negation comes from the other sentence it fuses
    assert not vetoed("Campaigners called the driver's behaviour selfish but she didn't think too much about it")
    assert vetoed("The striker has a new contract with the club")  # "rejected" dropped before "new"
    # a clause that copies words after a negation but not the word it negates keeps the negation's sense
    assert not vetoed("The striker trained alone but a contract with the club was discussed")


def test_the_embedding_baseline_reads_the_index_model_over_evidence_sentences() -> None:
    from evals.index_cosine import best_sentence_cosine

    copy = "The latest round of negotiations took place this week in Geneva."
    other = "The striker scored twice in the second half as the home side won the cup final."
    got = best_sentence_cosine([copy, other, copy], [ARTICLE, ARTICLE, ""])
    assert got[0] > 0.6 and got[0] > got[1] + 0.4
    assert got[2] == 0.0  # no evidence sentence, no similarity
