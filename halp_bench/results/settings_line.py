"""The line under every table that names the settings its numbers share (encoder, frames, epochs, ...),
and which of them differ between its rows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from halp_bench.results.labels import DATA_MARK
from halp_bench.results.stats import CONFIDENCE
from halp_bench.results.table_model import DAGGER

SETTINGS = {  # results-row setting -> how the settings line names it
    "encoder": "encoder",
    "frames": "frames",
    "pretrain_epochs": "pretrain epochs",
    "pretrain_optimizer": "pretraining optimiser",
    "linear_epochs": "linear epochs",
    "transfer_epochs": "fine-tune epochs",
    "knn_k": "kNN k",
    "stream": "stream",
    "normalize": "data normalisation",
    "pipeline": "data pipeline",
    "linear_lr": "linear lr",
    "protocol": "protocol settings",
}
# settings whose neutral value goes unsaid: a line names them only when some row has another value
# (rows stored before the setting existed count as neutral)
SETTINGS_NEUTRAL = {"normalize": "none", "pipeline": "auto", "protocol": "method"}
TABLE_SETTINGS = {
    "linear": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer", "linear_epochs", "linear_lr", "stream", "protocol"),
    "knn": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer", "knn_k", "stream", "protocol"),
    "transfer": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer", "transfer_epochs", "stream", "protocol"),
    "finetune": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer", "stream", "protocol"),
    "cost": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer"),
    "semi": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer", "transfer_epochs", "stream", "protocol"),
    "ablations": ("encoder", "frames", "normalize", "pipeline", "pretrain_epochs", "pretrain_optimizer", "linear_epochs", "linear_lr", "stream", "protocol"),
}


# ---------------------------------------------------------------------------------------------
# Results -> frame
# ---------------------------------------------------------------------------------------------


def settings_notes(name: str, frame: pd.DataFrame) -> list[str]:
    """The settings line (and the dagger's footnote) for the rows of one table."""
    if frame.empty:
        return []
    parts = [f"preset {', '.join(sorted(frame['preset'].astype(str).unique()))}"]
    for key in TABLE_SETTINGS[name]:
        col = f"setting.{key}"
        values = frame[col] if col in frame else pd.Series(dtype=object)
        if key in SETTINGS_NEUTRAL:
            values = values.reindex(frame.index).fillna(SETTINGS_NEUTRAL[key])
            if set(values) <= {SETTINGS_NEUTRAL[key]}:
                continue
        if values.notna().any():
            parts.append(f"{SETTINGS[key]} {setting_values(values, frame['label'], by_label(frame, 'rank'))}")
    parts.append(f"seeds {', '.join(str(s) for s in sorted(frame['seed'].unique()))}")
    if name != "cost":
        reports = set(frame["report"])
        parts.append("accuracy of the final epoch" if reports == {"final"} else "mixed reporting (see †)")
    notes = ["Settings: " + "; ".join(parts) + "."]
    if name not in ("cost", "differences"):
        notes.append(
            f"Cells: mean ± std (n seeds) over several seeds. Bold: the best of our rows, only where its lead over the "
            f"runner-up is real (the {CONFIDENCE:.0%} Student-t interval of their paired difference over common seeds "
            "excludes 0; never with one seed)."
        )
    if frame["label"].str.contains(DATA_MARK, regex=False).any():
        notes.append(
            "[data …]: rows of one cell computed on different data (their data fingerprints differ: another "
            "preparation, file or version of the dataset), shown apart and never averaged; `halp-bench data "
            "DATASET --split SPLIT` prints the fingerprint of the data at hand."
        )
    if name != "cost" and "best" in set(frame["report"]):
        every = ", ".join(str(int(v)) for v in frame.loc[frame["report"] == "best", "eval_every"].dropna().unique())
        notes.append(
            f"{DAGGER} Best test accuracy over evaluations every {every} epochs (eval.report=best, the official "
            "code's reporting; optimistic). Numbers without † are the final epoch's."
        )
    return notes


def setting_values(values: pd.Series, labels: pd.Series, ranks: dict[str, tuple]) -> str:
    """One setting's values over a table's rows: the value when all share it, else each value
    with the rows that have it (so a reader knows e.g. which method ran on which encoder)."""
    present = values.dropna()
    distinct = list(dict.fromkeys(str(v) for v in present))
    if len(distinct) == 1:
        return distinct[0]
    rows = {value: list(dict.fromkeys(labels[present.index[present.astype(str) == value]])) for value in distinct}
    return ", ".join(f"{value} ({', '.join(ordered(rows[value], ranks))})" for value in distinct)


def by_label(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    """{label: the column's value on its rows} (one value per label by construction)."""
    return {label: (None if _missing(value) else value) for label, value in zip(frame["label"], frame[column])}


def ordered(labels: Any, ranks: dict[str, tuple]) -> list[str]:
    """Labels in their methods' declared order (family, then place in it), then alphabetically."""
    return sorted(labels, key=lambda label: (ranks.get(label, (len(ranks) + 99,)), label))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
