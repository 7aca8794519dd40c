"""Fit and validate the offline judge on QAGS CNN/DM + XSum dev: `python -m evals.judge_fit [--write]`.

Reports grouped cross-validation per style (articles never straddle folds), fit-on-one-style /
test-on-the-other both ways, and what each feature group contributes. With --write, the model
refitted on both files goes to rag/judge.json. Features are cached (--cache) keyed by the files and
the feature code, so refitting is quick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.judge_cv import (
    BAND_TARGET,
    BASELINES,
    COSINE_BASELINE,
    STYLES,
    Data,
    ablation,
    best_threshold,
    cross_style,
    cross_validate,
    fit_judge,
    uncertain_band,
)
from evals.qags import QAGS_CNNDM, QAGS_XSUM, load_qags
from rag import Settings

JUDGE_JSON = Path(__file__).resolve().parent.parent / "rag" / "judge.json"
FEATURE_CODE = Path(__file__).resolve().parent.parent / "rag" / "judge_features.py"
INDEX_COSINE_CODE = Path(__file__).resolve().parent / "index_cosine.py"


def candidate_features(path: Path, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Every candidate feature of every summary sentence of a QAGS file, with labels and article ids."""
    code = FEATURE_CODE.read_bytes() + INDEX_COSINE_CODE.read_bytes()
    key = hashlib.sha256(path.read_bytes() + code).hexdigest()[:16]
    cached = cache_dir / f"qags-{path.stem}-{key}.npz" if cache_dir else None
    if cached and cached.is_file():
        z = np.load(cached)
        return z["x"], z["y"], z["g"], [str(n) for n in z["names"]]
    from evals.index_cosine import best_sentence_cosine
    from rag.embeddings import LocalMiniLMEmbeddings
    from rag.judge_features import JUDGE_LAYERS, Encoder, features

    items = load_qags(path)
    enc = Encoder(LocalMiniLMEmbeddings(layers=JUDGE_LAYERS))
    vecs, words = enc.claims([i.sentence for i in items])
    evidence: dict[int, Any] = {}
    rows = []
    for it, qv, cw in zip(items, vecs, words, strict=True):
        if it.article_id not in evidence:
            evidence[it.article_id] = enc.evidence(it.article)
        rows.append(features(it.sentence, qv, cw, evidence[it.article_id]))
    # the embedding-cosine baseline, with the index's full model (not a judge feature)
    for row, cos in zip(rows, best_sentence_cosine([i.sentence for i in items], [i.article for i in items]),
                        strict=True):
        row[COSINE_BASELINE] = float(cos)
    names = list(rows[0])
    x = np.array([[r[n] for n in names] for r in rows])
    y = np.array([i.label for i in items])
    g = np.array([i.article_id for i in items])
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, x=x, y=y, g=g, names=np.array(names))
    return x, y, g, names


def load_data(cnndm: Path, xsum: Path, cache_dir: Path | None) -> Data:
    parts = [candidate_features(p, cache_dir) for p in (cnndm, xsum)]
    names = parts[0][3]
    return Data(
        x=np.vstack([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        style=np.concatenate([np.full(len(p[1]), s) for s, p in enumerate(parts)]),
        group=np.concatenate([p[2] + 100_000 * s for s, p in enumerate(parts)]),
        names=tuple(names),
    )


def fit_report(d: Data, with_ablation: bool = True) -> tuple[dict[str, Any], Any]:
    cv = cross_validate(d)
    scores = cv.pop("oof")
    band = uncertain_band(d, scores)
    in_band = float(np.mean((scores >= band[0]) & (scores < band[1])))
    sizes = {s: {"n": int((d.style == i).sum()), "articles": len(set(d.group[d.style == i].tolist())),
                 "supported": int(d.y[d.style == i].sum())} for i, s in enumerate(STYLES)}
    fitted_on = (f"QAGS CNN/DM mturk_cnndm.jsonl ({sizes['cnndm']['n']} sentences) + QAGS XSum mturk_xsum_dev.jsonl "
                 f"({sizes['xsum']['n']} sentences), majority vote")
    params = fit_judge(d, fitted_on=fitted_on)
    thresholds = {b: best_threshold(d.x[:, d.names.index(f)], d.y, d.style) for b, f in BASELINES.items()}
    report: dict[str, Any] = {
        "data": sizes,
        "cross_validation": cv,
        "cross_style": cross_style(d),
        "uncertain_band_fit": {"band": list(band), "share_of_oof_scores_in_band": round(in_band, 3),
                               "target_precision": BAND_TARGET},
    }
    if with_ablation:
        report["ablation"] = ablation(d)
    params = type(params)(
        extractive=params.extractive, paraphrase=params.paraphrase, gate=params.gate, threshold=0.5,
        band=band, vetoes=params.vetoes, fitted_on=fitted_on,
        extra={"baseline_thresholds": thresholds, **report},
    )
    return report, params


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cnndm", type=Path, help="mturk_cnndm.jsonl (default: $RAG_DATASETS_DIR/qags/...)")
    p.add_argument("--xsum", type=Path, help="mturk_xsum_dev.jsonl (default: $RAG_DATASETS_DIR/qags/...)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/rag-judge-features"), help="feature cache directory")
    p.add_argument("--no-ablation", action="store_true", help="skip the per-feature-group ablation")
    p.add_argument("--write", action="store_true", help="write the refitted model to rag/judge.json")
    args = p.parse_args(argv)
    datasets = Settings().datasets_dir
    t = time.perf_counter()
    d = load_data(args.cnndm or datasets / QAGS_CNNDM, args.xsum or datasets / QAGS_XSUM, args.cache)
    print(f"QAGS: {len(d.y)} sentences; features in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    report, params = fit_report(d, with_ablation=not args.no_ablation)
    print(json.dumps(report, indent=2))
    if args.write:
        JUDGE_JSON.write_text(json.dumps(params.to_dict(), indent=2) + "\n")
        print(f"wrote {JUDGE_JSON}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
