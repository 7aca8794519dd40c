"""The shipped judge's agreement with QAGS human labels (no refitting: weights from rag/judge.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from evals.index_cosine import best_sentence_cosine
from evals.judge_cv import BASELINES, COSINE_BASELINE, group_style
from evals.judge_fit import JUDGE_JSON
from evals.qags import load_qags
from rag import JUDGE_FEATURES, ConfigError, SupportJudge


def confusion(labels: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    """Counts against the human majority: true/false supported, true/false not supported."""
    return {
        "supported_and_people_agree": int((predicted & (labels == 1)).sum()),
        "supported_but_people_disagree": int((predicted & (labels == 0)).sum()),
        "not_supported_and_people_agree": int((~predicted & (labels == 0)).sum()),
        "not_supported_but_people_disagree": int((~predicted & (labels == 1)).sum()),
    }


def verdict_table(judge: SupportJudge, labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """How many sentences get each verdict and how often people agree with the confident ones."""
    verdicts = np.array([judge.verdict(float(p)) for p in probs])
    out: dict[str, Any] = {"band": list(judge.band)}
    for v, agree in (("supported", 1), ("not supported", 0), ("uncertain", None)):
        sel = verdicts == v
        row: dict[str, Any] = {"n": int(sel.sum())}
        if agree is not None and sel.any():
            row["people_agree"] = round(float((labels[sel] == agree).mean()), 4)
        if agree is None:
            row["people_say_supported"] = round(float(labels[sel].mean()), 4) if sel.any() else None
        out[v] = row
    return out


def evaluate_judge(path: Path, limit_articles: int | None = None, judge: SupportJudge | None = None) -> dict[str, Any]:
    items = load_qags(path, limit_articles)
    labels = np.array([i.label for i in items])
    if len(set(labels.tolist())) < 2:
        raise ConfigError(f"{path}: the labels need both classes to measure agreement - use more articles.")
    judge = judge or SupportJudge()
    x = judge.feature_matrix([(i.sentence, i.article) for i in items])
    # each article's summary is one answer: the gate reads the mean of its sentences, as rag.verify does
    probs = judge.probabilities(x, group_style(x, np.array([i.article_id for i in items])))
    shipped = json.loads(JUDGE_JSON.read_text())
    thresholds = shipped.get("baseline_thresholds", {})
    names = list(JUDGE_FEATURES)
    baselines = {}
    for b, feature in BASELINES.items():
        if feature == COSINE_BASELINE:  # not a judge feature: the index's full model
            col = best_sentence_cosine([i.sentence for i in items], [i.article for i in items])
        else:
            col = x[:, names.index(feature)]
        baselines[b] = {
            "balanced_accuracy": round(float(balanced_accuracy_score(labels, col >= thresholds.get(b, 0.5))), 4),
            "roc_auc": round(float(roc_auc_score(labels, col)), 4),
        }
    fitted_on = str(shipped.get("fitted_on", ""))
    in_sample = path.name in fitted_on
    cv = shipped.get("cross_validation", {})
    return {
        "n": len(items),
        "balanced_accuracy": round(float(balanced_accuracy_score(labels, probs >= judge.threshold)), 4),
        "roc_auc": round(float(roc_auc_score(labels, probs)), 4),
        "baselines": baselines,
        "threshold": judge.threshold,
        "figures_above": ("in-sample: the shipped judge was fitted on this file (see cross_validation_at_fit for "
                          "out-of-fold figures)") if in_sample else "held out: the shipped judge never saw this file",
        "in_sample": in_sample,
        "confusion_at_threshold": confusion(labels, probs >= judge.threshold),
        "verdicts": verdict_table(judge, labels, probs),
        "fitted_on": fitted_on,
        "cross_validation_at_fit": {"note": "out-of-fold, grouped by article, fitted on both styles, from "
                                            "rag/judge.json", **cv},
        "cross_style_at_fit": {"note": "fit on one style, test on the other (from rag/judge.json)",
                               **shipped.get("cross_style", {})},
        "ablation_at_fit": shipped.get("ablation", {}),
    }
