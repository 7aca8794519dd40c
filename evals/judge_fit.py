"""Fit and validate the offline judge on QAGS CNN/DM: `python -m evals.judge_fit [--qags PATH] [--write]`.

Cross-validation is grouped by article (no article in both folds) and reports the judge next to
the baselines (unigram overlap, embedding cosine, trigram copy rate), each thresholded on the
training folds only. With --write, the model refitted on all of QAGS goes to rag/judge.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from evals.qags import QAGS_CNNDM, load_qags
from rag import JUDGE_FEATURES, JudgeParams, Settings, SupportJudge

BASELINES = {"unigram_overlap": "coverage", "embedding_cosine": "cosine_best", "trigram_copy": "trigram_copy"}
C = 0.1  # inverse L2 strength; small data, so a firm prior
FOLDS = 5
JUDGE_JSON = Path(__file__).resolve().parent.parent / "rag" / "judge.json"


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold maximising balanced accuracy on these (training) scores."""
    best, best_t = -1.0, 0.5
    for t in np.unique(scores):
        b = balanced_accuracy_score(labels, scores >= t)
        if b > best:
            best, best_t = b, float(t)
    return best_t


def fit_params(x: np.ndarray, y: np.ndarray, fitted_on: str = "") -> JudgeParams:
    """Standardise, fit a class-balanced logistic regression; decision threshold 0.5 (not tuned)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit((x - mean) / scale, y)
    return JudgeParams(
        mean=tuple(map(float, mean)), scale=tuple(map(float, scale)), coef=tuple(map(float, model.coef_[0])),
        intercept=float(model.intercept_[0]), threshold=0.5, fitted_on=fitted_on,
    )


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Out-of-fold balanced accuracy and ROC AUC of the judge and of each baseline."""
    names = list(JUDGE_FEATURES)
    oof = {"judge": np.zeros(len(y)), **{b: np.zeros(len(y)) for b in BASELINES}}
    pred = {k: np.zeros(len(y), dtype=bool) for k in oof}
    for train, test in GroupKFold(n_splits=FOLDS).split(x, y, groups):
        judge = SupportJudge(embedder=None, params=fit_params(x[train], y[train]))
        oof["judge"][test] = judge.probabilities(x[test])
        pred["judge"][test] = oof["judge"][test] >= judge.threshold
        for b, feature in BASELINES.items():
            col = names.index(feature)
            t = best_threshold(x[train, col], y[train])
            oof[b][test] = x[test, col]
            pred[b][test] = x[test, col] >= t
    report = {
        k: {"balanced_accuracy": float(balanced_accuracy_score(y, pred[k])), "roc_auc": float(roc_auc_score(y, oof[k]))}
        for k in oof
    }
    return {"folds": FOLDS, "grouped_by": "article", **report}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--qags", type=Path, help="mturk_cnndm.jsonl (default: $RAG_DATASETS_DIR/qags/...)")
    p.add_argument("--write", action="store_true", help="write the refitted model to rag/judge.json")
    args = p.parse_args(argv)
    path = args.qags or Settings().datasets_dir / QAGS_CNNDM
    items = load_qags(path)
    x_t = time.perf_counter()
    placeholder = JudgeParams(mean=(0.0,) * len(JUDGE_FEATURES), scale=(1.0,) * len(JUDGE_FEATURES),
                              coef=(0.0,) * len(JUDGE_FEATURES), intercept=0.0, threshold=0.5)
    x = SupportJudge(params=placeholder).feature_matrix([(i.sentence, i.article) for i in items])
    y = np.array([i.label for i in items])
    groups = np.array([i.article_id for i in items])
    print(f"QAGS CNN/DM: {len(items)} sentences, {len(set(groups.tolist()))} articles, {int(y.sum())} supported; "
          f"features in {time.perf_counter() - x_t:.0f} s", file=sys.stderr)
    cv = cross_validate(x, y, groups)
    params = fit_params(x, y, fitted_on=f"QAGS CNN/DM mturk_cnndm.jsonl ({len(items)} sentences, majority vote)")
    names = list(JUDGE_FEATURES)
    thresholds = {b: best_threshold(x[:, names.index(f)], y) for b, f in BASELINES.items()}
    out = {"cross_validation": cv, "weights": dict(zip(names, params.coef, strict=True))}
    print(json.dumps(out, indent=2))
    if args.write:
        data = params.to_dict() | {"baseline_thresholds": thresholds, "cross_validation": cv}
        JUDGE_JSON.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {JUDGE_JSON}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
