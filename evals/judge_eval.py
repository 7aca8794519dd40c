"""The shipped judge's agreement with QAGS human labels (no refitting: weights from rag/judge.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from evals.judge_fit import BASELINES, JUDGE_JSON
from evals.qags import load_qags
from rag import JUDGE_FEATURES, ConfigError, SupportJudge


def evaluate_judge(path: Path, limit_articles: int | None = None, judge: SupportJudge | None = None) -> dict[str, Any]:
    items = load_qags(path, limit_articles)
    labels = np.array([i.label for i in items])
    if len(set(labels.tolist())) < 2:
        raise ConfigError(f"{path}: the labels need both classes to measure agreement - use more articles.")
    judge = judge or SupportJudge()
    x = judge.feature_matrix([(i.sentence, i.article) for i in items])
    probs = judge.probabilities(x)
    shipped = json.loads(JUDGE_JSON.read_text())
    thresholds = shipped.get("baseline_thresholds", {})
    names = list(JUDGE_FEATURES)
    baselines = {}
    for b, feature in BASELINES.items():
        col = x[:, names.index(feature)]
        baselines[b] = {
            "balanced_accuracy": round(float(balanced_accuracy_score(labels, col >= thresholds.get(b, 0.5))), 4),
            "roc_auc": round(float(roc_auc_score(labels, col)), 4),
        }
    return {
        "n": len(items),
        "balanced_accuracy": round(float(balanced_accuracy_score(labels, probs >= judge.threshold)), 4),
        "roc_auc": round(float(roc_auc_score(labels, probs)), 4),
        "baselines": baselines,
        "threshold": judge.threshold,
        "cross_validation_at_fit": shipped.get("cross_validation", {}),
        "note": "shipped calibration (fitted on the full QAGS CNN/DM file: in-sample there; "
                "see rag/judge.json cross_validation for grouped out-of-fold figures)",
    }
