"""Tables from the results store: rows are methods, columns dataset/split x protocol, plus cost.

Every table carries the settings that make its numbers comparable (preset, encoder, frames, kNN k,
epochs, seeds, final vs best epoch) so that a pasted table never loses them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from halp_bench.results.store import CELL_FIELDS


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per stored row, the latest row winning when a cell was run twice."""
    records = []
    for row in rows:
        metrics = row.get("metrics", {})
        pre = row.get("pretrain", {})
        records.append(
            {
                **{f: row.get(f) for f in CELL_FIELDS},
                "config_id": row.get("config_id"),
                "top1": metrics.get("top1"),
                "top5": metrics.get("top5"),
                "report": row.get("report", "final"),
                "time_per_epoch_s": pre.get("time_per_epoch_s"),
                "peak_memory_mb": pre.get("peak_memory_mb"),
                "peak_memory_increase_mb": pre.get("peak_memory_increase_mb"),
                "finished": row.get("finished", ""),
                **{f"setting.{k}": v for k, v in row.get("settings", {}).items()},
            }
        )
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    frame = frame.sort_values("finished").drop_duplicates([*CELL_FIELDS, "config_id"], keep="last")
    return frame.reset_index(drop=True)


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Top-1 (%) per method (rows) and dataset/split/protocol (columns); mean ± std over seeds."""
    frame = frame.assign(column=frame["dataset"] + "/" + frame["split"] + " " + frame["protocol"])
    table = frame.pivot_table(index="method", columns="column", values="top1", aggfunc=_cell, sort=False)
    cost = frame.groupby("method", sort=False).agg(
        time_per_epoch_s=("time_per_epoch_s", "max"), peak_memory_mb=("peak_memory_mb", "max")
    )
    table["time/epoch (s)"] = cost["time_per_epoch_s"].map(lambda v: f"{v:.2f}" if v else "–")
    table["peak mem (MB)"] = cost["peak_memory_mb"].map(lambda v: f"{v:.0f}" if v else "–")
    return table.fillna("–")


def settings_line(frame: pd.DataFrame) -> str:
    """The comparability settings of the rows, as one line under the table."""
    parts = [f"preset {', '.join(sorted(frame['preset'].astype(str).unique()))}"]
    for key, label in (("encoder", "encoder"), ("frames", "frames"), ("pretrain_epochs", "pretrain epochs"),
                       ("linear_epochs", "linear epochs"), ("knn_k", "kNN k"), ("stream", "stream")):
        col = f"setting.{key}"
        if col in frame:
            parts.append(f"{label} {', '.join(str(v) for v in frame[col].dropna().unique())}")
    parts.append(f"seeds {', '.join(str(s) for s in sorted(frame['seed'].unique()))}")
    reports = set(frame["report"])
    parts.append("accuracy of the final epoch" if reports == {"final"} else "† best test accuracy over evaluations (official code's reporting)")
    return "Top-1 %. " + "; ".join(parts) + "."


def markdown_table(rows: list[dict[str, Any]]) -> str:
    frame = results_frame(rows)
    if frame.empty:
        return "(no results yet)"
    table = accuracy_table(frame)
    return table.to_markdown() + "\n\n" + settings_line(frame)
