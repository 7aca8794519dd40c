"""The evaluation page: the latest eval report (summary, charts per metric group, failures)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from rag import Settings
from ui.common import settings
from ui.render import md


@dataclass
class Report:
    directory: Path
    summary: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def report_dir(s: Settings) -> Path:
    return s.evals_dir / "latest"


def dataset_dirs(s: Settings) -> dict[str, Path]:
    """Each dataset's latest report (`rag eval --dataset NAME` keeps one under evals/by-dataset/NAME)."""
    root = s.evals_dir / "by-dataset"
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if (d / "summary.json").exists()}


def load_report(directory: Path) -> Report | None:
    """summary.json and items.jsonl, or None when there is no report yet; bad lines are noted."""
    summary_path = directory / "summary.json"
    if not summary_path.exists():
        return None
    problems: list[str] = []
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return Report(directory, {}, [], [f"{summary_path}: cannot be read ({exc}) - run `rag eval` again."])
    items: list[dict[str, Any]] = []
    items_path = directory / "items.jsonl"
    if items_path.exists():
        for i, line in enumerate(items_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                problems.append(f"{items_path}: line {i} is not JSON - skipped")
                continue
            if isinstance(obj, dict):
                items.append(obj)
    else:
        problems.append(f"{items_path}: missing - per-item results cannot be shown")
    return Report(directory, summary, items, problems)


def metric_group(name: str) -> str:
    return name.split("_", 1)[0] if "_" in name else "other"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def summary_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per metric: value, baseline, change, regression, and one column per split."""
    metrics: dict[str, Any] = summary.get("metrics") or {}
    baseline: dict[str, Any] = summary.get("baseline") or {}
    regressions = set(summary.get("regressions") or [])
    by_split: dict[str, dict[str, Any]] = summary.get("metrics_by_split") or {}
    rows = []
    for name in sorted(set(metrics) | set(baseline)):
        value, base = _num(metrics.get(name)), _num(baseline.get(name))
        row: dict[str, Any] = {
            "metric": name,
            "value": value,
            "baseline": base,
            "change": None if value is None or base is None else value - base,
            "regression": "yes" if name in regressions else "",
        }
        for split, values in sorted(by_split.items()):
            row[split] = _num((values or {}).get(name))
        rows.append(row)
    return pd.DataFrame(rows)


def _charts(frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    st.subheader("Metrics by group")
    groups = sorted({metric_group(m) for m in frame["metric"]})
    cols = st.columns(min(2, len(groups)))
    for i, group in enumerate(groups):
        part = frame[frame["metric"].map(metric_group) == group].set_index("metric")[["value", "baseline"]]
        part = part.dropna(how="all")
        if part.empty:
            continue
        with cols[i % len(cols)]:
            st.markdown(f"**{md(group)}**")
            st.bar_chart(part, stack=False, height=220)


def _failures(items: list[dict[str, Any]]) -> None:
    failing = [it for it in items if not it.get("passed", True)]
    st.subheader(f"Failing items ({len(failing)} of {len(items)})")
    if not failing:
        st.success("Every item passed.")
        return
    splits = sorted({str(it.get("split", "")) for it in failing})
    chosen = st.multiselect("Splits", splits, default=splits, key="eval_splits")
    for it in failing:
        if str(it.get("split", "")) not in chosen:
            continue
        label = md(f"{it.get('id', '?')} · {it.get('kind', '')} · {it.get('split', '')}")
        with st.expander(label):
            st.caption("Question")
            st.text(str(it.get("question", "")))
            for failure in it.get("failures") or []:
                st.error(md(str(failure)))
            st.caption("Refused" if it.get("refused") else "Answer")
            st.text(str(it.get("answer", "")))
            for c in it.get("citations") or []:
                if isinstance(c, dict):
                    st.markdown(f"\\[{md(str(c.get('n', '?')))}\\] **{md(str(c.get('title', '')))}**")
                    if c.get("quote"):
                        st.text(str(c["quote"]))
            metrics = it.get("metrics") or {}
            if metrics:
                st.dataframe(pd.DataFrame([metrics]), hide_index=True)


def page() -> None:
    st.title("Evaluation")
    directory = report_dir(settings())
    datasets = dataset_dirs(settings())
    if datasets:  # golden (the seed article) and news (many articles) side by side: pick one
        choice = st.radio("Report", ["latest run", *datasets], horizontal=True, key="eval_dataset")
        if choice in datasets:
            directory = datasets[choice]
    report = load_report(directory)
    if report is None:
        st.info(
            f"No evaluation report yet in {md(str(directory))}. Run `rag eval` (the golden set) to create one; "
            "it will show here: metrics against the baseline, regressions, and the failing questions."
        )
        return
    for p in report.problems:
        st.warning(md(p))
    s = report.summary
    if not s:
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Dataset", str(s.get("dataset", "?")))
    c2.metric("Mode", str(s.get("mode", "?")))
    c3.metric("Items", str(s.get("n", len(report.items))))
    regressions = list(s.get("regressions") or [])
    if regressions:
        st.error("Regressions against the baseline: " + ", ".join(md(str(r)) for r in regressions))
    else:
        st.success("No regressions against the baseline.")
    frame = summary_frame(s)
    st.subheader("Summary")
    st.dataframe(frame, hide_index=True, width="stretch")
    _charts(frame)
    _failures(report.items)
