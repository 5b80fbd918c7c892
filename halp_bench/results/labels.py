"""Row labels: the method, plus exactly what tells its rows apart from other rows of that method.

A label is the method's name, the label part its declared ablation settings make ("halp (λ=0.6)",
stored in the row), the weights file of `eval --checkpoint` rows and "[official]" for the authors'
recipe. Where one label still has rows of several settings in one table cell, each gets the
settings that differ: the encoder first, as it describes itself ("moco · transformer 8x256"),
then every other differing key ("[linear.lr=0.01]"), none left out; a label too long for a
table column is shown as its method and a number, spelled out in a legend under the table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from halp_bench.results.row import ResultRow

DATA_MARK = " [data "  # a label suffix: rows of one cell computed on different data (`separate_data`)
ENCODER_MARK = " · "  # a label part: the encoder, where rows of one method differ in it
LEGEND_AFTER = 48  # labels longer than this many characters are numbered and spelled out under the table
# settings that never tell two cells' numbers apart (or are equal within a cell by construction)
NOT_DISTINGUISHING = ("seed", "device", "checkpoint_every", "checkpoint_every_iters", "eval.monitor_every", "data.dataset", "data.split", "method_name")


def variant_label(row: ResultRow, variant: str | None = None) -> str:
    """The method's name, plus its ablation label part (e.g. "(λ=0.6)"; `variant`, default: the
    row's), the weights file of `eval` rows, and `[official]` for the authors' recipe (never one
    row with the paper preset's)."""
    if variant is None:
        _, variant, _ = row.table_fields()
    label = row.method + (f" ({variant})" if variant else "")
    if row.config.get("ensemble"):  # `halp-bench ensemble`: fused class scores of separately pretrained streams
        label += f" 3s ({row.config['ensemble']['name']})"
    if row.weights:  # `eval --checkpoint`: its own row, named after the file
        released = row.weights.get("layout") != "halp-bench"
        label += " (released weights)" if released else f" (checkpoint {row.weights['sha256'][:8]})"
        label += f" [{row.weights['progress']}]" if row.weights.get("progress") else ""  # an unfinished pretraining
    return label + (" [official]" if row.preset == "official" else "")


def separate_data(frame: pd.DataFrame, id_column: str, label_column: str, cell: list[str]) -> pd.Series:
    """Labels that keep rows computed on different data apart, so a cell never averages them:
    where rows of one label and cell carry several data fingerprints (`id_column`), each row's
    label gets DATA_MARK and its fingerprint ("unknown" for a row from before fingerprints).
    A row without a fingerprint beside rows of one fingerprint counts as matching them."""
    labels = frame[label_column].copy()
    for _, group in frame.groupby(cell, sort=False, dropna=False):
        if group[id_column].dropna().nunique() < 2:
            continue
        for index, value in group[id_column].items():
            shown = "<".join(part[:8] for part in value.split("<")) if isinstance(value, str) else "unknown"
            labels[index] = f"{labels[index]}{DATA_MARK}{shown}]"
    return labels


def separate(frame: pd.DataFrame, id_column: str, config_column: str, cell: list[str]) -> pd.Series:
    """Labels that keep settings apart: where one label has rows of several settings (`id_column`)
    in the same `cell`, each such row's label gets what differs (`_distinction`). Cells are those
    of the accuracy tables (config ids) or the cost table (pretrainings)."""
    labels = frame["label"].copy()
    for _, group in frame.groupby(cell, sort=False, dropna=False):
        ids = list(dict.fromkeys(group[id_column]))
        if len(ids) < 2:
            continue
        latest = {cid: group.loc[group[id_column] == cid].iloc[-1] for cid in ids}
        configs = {cid: row[config_column] for cid, row in latest.items()}
        encoders = {cid: str(row["encoder_text"]) for cid, row in latest.items()}
        for cid, suffix in _distinction(configs, encoders).items():
            labels[(frame[id_column] == cid) & (frame["label"] == group["label"].iloc[0])] = group["label"].iloc[0] + (suffix or f" [settings {cid}]")
    return labels


def _distinction(configs: dict[str, dict[str, Any]], encoders: dict[str, str]) -> dict[str, str]:
    """Per settings id, the label suffix naming every setting that differs among `configs`: the
    encoder's own description first where those differ (its keys then go unsaid), then the rest."""
    keys = sorted({k for c in configs.values() for k in c if k not in NOT_DISTINGUISHING})
    differing = [k for k in keys if len({repr(c.get(k)) for c in configs.values()}) > 1]
    by_encoder = len(set(encoders.values())) > 1
    if by_encoder:
        differing = [k for k in differing if not k.startswith("encoder.")]
    suffixes = {}
    for cid, config in configs.items():
        shown = ", ".join(f"{k}={_short(config.get(k))}" for k in differing)
        suffixes[cid] = (f"{ENCODER_MARK}{encoders[cid]}" if by_encoder else "") + (f" [{shown}]" if shown else "")
    return suffixes


def _short(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def shorten(labels: list[str], methods: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """({label: shown label}, legend lines): a label longer than LEGEND_AFTER becomes its method and a
    number ("moco [1]"), the legend line "[1] moco · transformer 8x256 [...]" gives it in full."""
    shown, legend = {}, []
    for label in labels:
        if len(label) <= LEGEND_AFTER:
            shown[label] = label
            continue
        legend.append(f"[{len(legend) + 1}] {label}")
        shown[label] = f"{methods.get(label, label.split(' ')[0])} [{len(legend)}]"
    return shown, legend
