"""The paper's tables from the results store, in Markdown (tabulate) and LaTeX (booktabs).

Tables: `linear` (Table 1: rows methods, columns dataset/split), `knn` (Table 2), `transfer`
(Table 3: columns "source -> target"), `cost` (Table 4: time per epoch and peak memory, absolute and
relative to `moco`, the paper's baseline), `semi` (columns dataset/split and labelled fraction) and
`ablations` (HaLP's variants, linear).

A cell is the mean over seeds, "mean ± std" when there are several; the best of our rows in each
column is bold. Rows differing in a HaLP setting the ablations vary (λ, N) get their own label,
e.g. "halp (λ=0.6)"; rows of one cell computed on different data (their data fingerprints differ)
are never averaged either: each gets "[data <fingerprint>]" and the table a note saying why.
Numbers reported as the best test accuracy over evaluations (`eval.report=best`, the official
code's way) carry a dagger and a footnote, and every table ends with the settings that make its
numbers comparable, so a pasted table never loses them. `with_paper` adds the published
numbers (`paper_results.json`) as rows labelled "(paper)"; a cell nobody measured shows "–".
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.config import flat_items, make_config
from halp_bench.errors import ConfigError
from halp_bench.identity import short_hash
from halp_bench.registry import METHODS, load_plugins
from halp_bench.results.row import CELL_FIELDS, ResultRow
from halp_bench.results.stats import CONFIDENCE, Difference, paired_difference

TABLES = ("linear", "knn", "transfer", "finetune", "cost", "semi", "ablations", "differences")
FORMATS = ("md", "tex")
BASELINE = "moco"
ROW_ORDER = ("random", "moco", "halp", "cmd", "halp_cmd", "halp_hardest", "halp_qk", "halp_zq", "skeletonclr", "crossclr", "crossclr_b", "aimclr", "mae_coords", "mamp")
ABLATION_METHODS = ("halp", "halp_hardest", "halp_qk", "halp_zq")
VARIANT_KEYS = {"lam": "λ", "num_prototypes": "N"}  # HaLP settings the paper's ablations vary
PAPER_COLUMNS = ("ntu60/xsub", "ntu60/xview", "ntu120/xsub", "ntu120/xset", "pku2/xsub")
PAPER_FILE = Path(__file__).with_name("paper_results.json")
MISSING = "–"
DATA_MARK = " [data "  # a label suffix: rows of one cell computed on different data (`_separate_data`)
DAGGER = "†"
SETTINGS = {  # results-row setting -> how the settings line names it
    "encoder": "encoder", "frames": "frames", "pretrain_epochs": "pretrain epochs", "pretrain_optimizer": "pretraining optimiser",
    "linear_epochs": "linear epochs",
    "transfer_epochs": "fine-tune epochs", "knn_k": "kNN k", "stream": "stream", "normalize": "data normalisation",
    "linear_lr": "linear lr", "protocol": "protocol settings",
}
# settings whose neutral value goes unsaid: a line names them only when some row has another value
# (rows stored before the setting existed count as neutral)
SETTINGS_NEUTRAL = {"normalize": "none", "protocol": "method"}
TABLE_SETTINGS = {
    "linear": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer", "linear_epochs", "linear_lr", "stream", "protocol"),
    "knn": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer", "knn_k", "stream", "protocol"),
    "transfer": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer", "transfer_epochs", "stream", "protocol"),
    "finetune": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer", "stream", "protocol"),
    "cost": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer"),
    "semi": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer", "transfer_epochs", "stream", "protocol"),
    "ablations": ("encoder", "frames", "normalize", "pretrain_epochs", "pretrain_optimizer", "linear_epochs", "linear_lr", "stream", "protocol"),
}


@dataclass(frozen=True)
class Cell:
    """One number: its values over seeds, shown as the mean (± std and the count over several seeds)."""

    values: tuple[float, ...]
    digits: int = 1
    suffix: str = ""
    dagger: bool = False
    seeds: tuple[int, ...] = ()  # the seed of each value (pairs cells of two methods)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.values))

    def text(self) -> str:
        out = f"{self.mean:.{self.digits}f}"
        if len(self.values) > 1:
            std = math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (len(self.values) - 1))
            out += f" ± {std:.{self.digits}f}"
        out += self.suffix + (DAGGER if self.dagger else "")
        return out + (f" (n={len(self.values)})" if len(self.values) > 1 else "")


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[tuple[str, dict[str, Any]]]  # (label, column -> Cell, DifferenceCell or text); ours first
    paper_rows: int = 0  # the last `paper_rows` rows are published numbers
    notes: list[str] = field(default_factory=list)
    bold_best: bool = True  # higher is better: bold the best of our rows in each column
    first_column: str = "method"
    text_columns: tuple[str, ...] = ()  # left-aligned columns of words, not numbers


# ---------------------------------------------------------------------------------------------
# Results -> frame
# ---------------------------------------------------------------------------------------------


FRAME_COLUMNS = [*CELL_FIELDS, "config_id", "label", "pretrain_label", "data", "pretrained_on", "top1", "metrics", "report", "eval_every",
                 "pretrain_epochs_run", "time_per_epoch_s", "peak_memory_increase_mb", "device", "finished", "data_id", "pretrain_data_id"]
# settings that never tell two cells' numbers apart (or are equal within a cell by construction)
NOT_DISTINGUISHING = ("seed", "device", "checkpoint_every", "checkpoint_every_iters", "eval.monitor_every", "data.dataset", "data.split",
                      "method_name")


def results_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """One line per stored row (FRAME_COLUMNS and `setting.*`), the latest row winning when a
    cell was run twice; rows of one method with different settings in the same cell get labels
    that say how they differ (`_separate_settings`), so a cell never averages them."""
    records = []
    for row in rows:
        pre = row.pretrain
        records.append(
            {
                **{f: getattr(row, f) for f in CELL_FIELDS},
                "config_id": row.config_id,
                "label": variant_label(row),
                "data": row.data,
                "pretrained_on": row.transfer_from or row.data,
                "top1": row.metrics.get("top1"),
                "metrics": row.metrics,
                "report": row.report,
                "eval_every": row.config.get("eval", {}).get("eval_every"),
                "pretrain_epochs_run": pre.epochs,
                "time_per_epoch_s": pre.time_per_epoch_s,
                "peak_memory_increase_mb": pre.peak_memory_increase_mb,
                "device": row.device + (f" x {pre.processes} processes" if pre.processes > 1 else ""),
                "finished": row.finished,
                "flat_config": flat_items(row.config),
                # the pretraining's settings less the seed and the like: the seeds of one cell are one row of the cost table
                "pretrain_id": short_hash({k: v for k, v in flat_items(row.pretrain_config).items() if k not in NOT_DISTINGUISHING}),
                "flat_pretrain": flat_items(row.pretrain_config),
                "data_id": row.data_id,
                "pretrain_data_id": _pretrain_data_id(row),
                "setting.linear_lr": row.config.get("linear", {}).get("lr"),  # rows stored before it was a setting have it here
                **{f"setting.{k}": v for k, v in row.settings.items()},
            }
        )
    if not records:
        return pd.DataFrame(columns=FRAME_COLUMNS)
    frame = pd.DataFrame.from_records(records).sort_values("finished", kind="stable")
    frame = frame.drop_duplicates([*CELL_FIELDS, "config_id"], keep="last", ignore_index=True)
    frame = frame.assign(pretrain_label=_separate(frame, "pretrain_id", "flat_pretrain", ["label", "pretrained_on"]))
    frame = frame.assign(pretrain_label=_separate_data(frame, "pretrain_data_id", "pretrain_label", ["pretrain_label", "pretrained_on"]))
    frame = frame.assign(label=_separate(frame, "config_id", "flat_config", ["label", "protocol", "dataset", "split", "transfer_from"]))
    return frame.assign(label=_separate_data(frame, "data_id", "label", ["label", "protocol", "dataset", "split", "transfer_from"]))


def _pretrain_data_id(row: ResultRow) -> str | None:
    """The fingerprint hash of the split the row's encoder was pretrained on (None: an older row)."""
    fingerprint = row.data_fingerprint
    return fingerprint.get("pretrained_on", fingerprint.get("evaluated_on", {})).get("hash") if fingerprint else None


def _separate_data(frame: pd.DataFrame, id_column: str, label_column: str, cell: list[str]) -> pd.Series:
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


def _separate(frame: pd.DataFrame, id_column: str, config_column: str, cell: list[str]) -> pd.Series:
    """Labels that keep settings apart: where one label has rows of several settings (`id_column`)
    in the same `cell`, each such row's label gets the settings that differ, e.g.
    'moco [encoder.hidden_size=64]'. Cells are those of the accuracy tables (config ids) or the
    cost table (pretrainings)."""
    labels = frame["label"].copy()
    for _, group in frame.groupby(cell, sort=False, dropna=False):
        ids = list(dict.fromkeys(group[id_column]))
        if len(ids) < 2:
            continue
        configs = {cid: group.loc[group[id_column] == cid, config_column].iloc[-1] for cid in ids}
        keys = sorted({k for c in configs.values() for k in c if k not in NOT_DISTINGUISHING})
        differing = [k for k in keys if len({repr(c.get(k)) for c in configs.values()}) > 1]
        for cid, config in configs.items():
            shown = ", ".join(f"{k}={_short(config.get(k))}" for k in differing[:3]) + (" ..." if len(differing) > 3 else "")
            suffix = f" [{shown or 'settings ' + cid}]"
            labels[(frame[id_column] == cid) & (frame["label"] == group["label"].iloc[0])] = group["label"].iloc[0] + suffix
    return labels


def _short(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


@functools.lru_cache(maxsize=None)
def _preset_method_defaults(preset: str, method: str) -> dict[str, Any]:
    try:
        return make_config(preset, method=method).to_dict()["method"]
    except ConfigError:
        return {}


def variant_label(row: ResultRow) -> str:
    """The method's name, plus the HaLP settings (λ, N) that differ from its preset's defaults, the
    weights file of `eval` rows, and `[official]` for the authors' recipe (never one row with the
    paper preset's)."""
    label = row.method
    released = bool(row.weights) and row.weights.get("layout") != "halp-bench"  # its method settings are unknown
    if row.method.startswith("halp") and not released:
        ours = row.config.get("method", {})
        defaults = _preset_method_defaults(row.preset, row.method)
        changed = [f"{symbol}={ours[key]}" for key, symbol in VARIANT_KEYS.items() if key in ours and key in defaults and ours[key] != defaults[key]]
        label += f" ({', '.join(changed)})" if changed else ""
    if row.weights:  # `eval --checkpoint`: its own row, named after the file
        label += " (released weights)" if released else f" (checkpoint {row.weights['sha256'][:8]})"
    return label + (" [official]" if row.preset == "official" else "")


# ---------------------------------------------------------------------------------------------
# Frame -> tables
# ---------------------------------------------------------------------------------------------


def build_tables(rows: list[ResultRow], names: tuple[str, ...] = TABLES, with_paper: bool = False) -> list[Table]:
    """The requested tables that have something to show (our rows, or published ones with_paper)."""
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise ConfigError(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    frame = results_frame(rows)
    paper = json.loads(PAPER_FILE.read_text(encoding="utf-8")) if with_paper else None
    builders = {"linear": _linear, "knn": _knn, "transfer": _transfer, "finetune": _finetune, "cost": _cost, "semi": _semi, "ablations": _ablations,
                "differences": _differences}
    tables = []
    for name in names:
        table = builders[name](frame)
        if paper is not None:
            _add_paper(table, paper)
        if table.rows:
            tables.append(table)
    return tables


def _floats(values: pd.Series) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _row_key(label: str) -> tuple[int, str]:
    method = label.split(" ")[0]
    return (ROW_ORDER.index(method) if method in ROW_ORDER else len(ROW_ORDER), label)


def _column_key(column: str) -> tuple[int, str]:
    data = column.split(" ")[0]
    return (PAPER_COLUMNS.index(data) if data in PAPER_COLUMNS else -1, column)


def _accuracy(name: str, title: str, sub: pd.DataFrame, column: pd.Series, value: pd.Series,
              columns: list[str] | None = None) -> Table:
    """Rows = labels, columns = `column`, cells = `value` over seeds (latest row per seed)."""
    sub = sub.assign(column=column, value=value).dropna(subset=["value"])
    latest = sub.drop_duplicates(["label", "column", "seed"], keep="last")
    cells: dict[str, dict[str, Cell | str]] = {}
    for (label, col), group in latest.groupby(["label", "column"], sort=False):
        cells.setdefault(label, {})[col] = Cell(_floats(group["value"]), dagger=bool((group["report"] == "best").any()),
                                                seeds=tuple(int(s) for s in group["seed"]))
    order = columns if columns is not None else sorted(set(latest["column"]), key=_column_key)
    rows = [(label, cells[label]) for label in sorted(cells, key=_row_key)]
    return Table(name, title, list(order), rows, notes=_notes(name, latest))


def _linear(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "linear") & frame["transfer_from"].isna()]
    return _accuracy("linear", "Table 1: linear evaluation, top-1 (%)", sub, sub["data"], sub["top1"])


def _knn(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "knn") & frame["transfer_from"].isna()]
    return _accuracy("knn", "Table 2: kNN, top-1 (%)", sub, sub["data"], sub["top1"])


def _transfer(frame: pd.DataFrame) -> Table:
    sub = frame[frame["protocol"] == "transfer"]
    return _accuracy("transfer", "Table 3: transfer (fine-tuned on the target), top-1 (%)", sub,
                     transfer_column(sub["transfer_from"], sub["data"]), sub["top1"])


def _finetune(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "finetune") & frame["transfer_from"].isna()]
    return _accuracy("finetune", "Fine-tuning on the pretraining data, top-1 (%)", sub, sub["data"], sub["top1"])


def transfer_column(source: pd.Series, target: pd.Series) -> pd.Series:
    return source.astype(str) + " → " + target.astype(str)


def _ablations(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "linear") & frame["transfer_from"].isna() & frame["method"].isin(ABLATION_METHODS)]
    return _accuracy("ablations", "Ablations of HaLP: linear evaluation, top-1 (%)", sub, sub["data"], sub["top1"])


def _semi(frame: pd.DataFrame) -> Table:
    """One row of `semi` metrics (`top1@1%`, ...) becomes one line per labelled fraction."""
    sub = frame[frame["protocol"] == "semi"]
    lines = [
        {**row, "fraction": float(key[len("top1@"):-1]), "value": value}
        for row in sub.to_dict("records")
        for key, value in row["metrics"].items()
        if key.startswith("top1@") and key.endswith("%")
    ]
    long = pd.DataFrame(lines, columns=[*sub.columns, "fraction", "value"])
    long = long.assign(column=long["data"] + " " + long["fraction"].map(lambda f: f"{f:g}%"))
    order = list(dict.fromkeys(long.sort_values(["data", "fraction"])["column"]))
    return _accuracy("semi", "Semi-supervised fine-tuning with a fraction of the training labels, top-1 (%)",
                     long, long["column"], long["value"], columns=order)


def _cost(frame: pd.DataFrame) -> Table:
    """Per pretraining (method, data): time per epoch and peak memory, and their ratio to `moco`."""
    sub = frame[(frame["pretrain_epochs_run"] > 0) & (frame["time_per_epoch_s"].fillna(0) > 0)]
    sub = sub.assign(label=sub["pretrain_label"])  # one row per pretraining, whatever the protocols' settings
    encoders = sub["setting.encoder"] if "setting.encoder" in sub else pd.Series("", index=sub.index)
    sub = sub.assign(encoder=encoders.fillna("").astype(str))
    per_seed = sub.groupby(["pretrained_on", "label", "seed", "encoder"], sort=False).agg(
        time=("time_per_epoch_s", "max"), memory=("peak_memory_increase_mb", "max")
    ).reset_index()
    columns = ["pretrained on", "time/epoch (s)", f"time ×{BASELINE}", "peak mem (MB)", f"mem ×{BASELINE}"]
    rows: list[tuple[str, dict[str, Cell | str]]] = []
    for data in sorted(set(per_seed["pretrained_on"]), key=_column_key):
        group = per_seed[per_seed["pretrained_on"] == data]
        for label in sorted(set(group["label"]), key=_row_key):
            mine = group[group["label"] == label]
            base = group[(group["label"] == BASELINE) & group["encoder"].isin(set(mine["encoder"]))]  # moco on the same encoder
            cells: dict[str, Cell | str] = {
                "pretrained on": data,
                "time/epoch (s)": Cell(_floats(mine["time"]), digits=2),
                "peak mem (MB)": Cell(_floats(mine["memory"].fillna(0)), digits=0),
            }
            for col, key in ((f"time ×{BASELINE}", "time"), (f"mem ×{BASELINE}", "memory")):
                if not base.empty and base[key].mean() > 0:
                    cells[col] = Cell((mine[key].mean() / base[key].mean(),), digits=2, suffix="×")
            rows.append((label, cells))
    latest = sub.drop_duplicates(["pretrained_on", "label", "seed"], keep="last")
    notes = _notes("cost", latest)
    if rows:
        devices = ", ".join(sorted(set(latest["device"].astype(str))))
        notes.insert(0, f"Pretraining on {devices}. Time per epoch: training only (no evaluation, no checkpoint "
                        f"writes). Peak mem: the most memory pretraining added to the process (CUDA: allocated "
                        f"tensors; CPU: resident set). Ratios are to {BASELINE} (the paper's baseline) on the same data and "
                        f"encoder (none where {BASELINE} did not train that encoder).")
    return Table("cost", "Table 4: pretraining cost", columns, rows, notes=notes, bold_best=False, text_columns=("pretrained on",))


@dataclass(frozen=True)
class DifferenceCell:
    """A paired difference shown as '+1.2 [-0.3, +2.7] (n=5)' (the interval only from 2 seeds)."""

    difference: Difference

    def text(self) -> str:
        d = self.difference
        out = f"{d.mean:+.1f}"
        if d.low is not None and d.high is not None:
            out += f" [{d.low:+.1f}, {d.high:+.1f}]"
        return out.replace("-", "−") + f" (n={d.n})"


def _differences(frame: pd.DataFrame) -> Table:
    """Each method against the one it builds on (`Method.compared_to`: halp vs moco, halp_cmd vs
    cmd, each ablation vs halp), in every cell of the linear, kNN, transfer and finetune tables both have."""
    load_plugins()
    accuracy = {"linear": _linear(frame), "knn": _knn(frame), "transfer": _transfer(frame), "finetune": _finetune(frame)}
    rows: dict[str, dict[str, Cell | str | DifferenceCell]] = {}
    columns: list[str] = []
    for protocol, table in accuracy.items():
        labelled = dict(table.rows)
        for label, cells in table.rows:
            method = label.split(" ")[0]
            base = METHODS.get(method).compared_to if method in METHODS else None
            if base is None or base not in labelled or label == base:
                continue
            for col, cell in cells.items():
                other = labelled[base].get(col)
                if not (isinstance(cell, Cell) and isinstance(other, Cell)):
                    continue
                difference = paired_difference(cell.by_seed, other.by_seed)
                if difference is not None:
                    column = f"{protocol} {col}"
                    columns += [column] if column not in columns else []
                    rows.setdefault(f"{label} − {base}", {})[column] = DifferenceCell(difference)
    ordered = sorted(rows, key=_row_key)
    notes = [f"Top-1 points, mean over the seeds both methods ran with, and the {CONFIDENCE:.0%} Student-t confidence interval "
             "of the paired difference in brackets (from 2 seeds on). An interval that contains 0 says the difference is "
             "within seed noise."] if rows else []
    return Table("differences", f"Paired differences against each method's base, top-1 (points, {CONFIDENCE:.0%} CI)",
                 columns, [(label, rows[label]) for label in ordered], notes=notes, bold_best=False, first_column="comparison")


def _notes(name: str, frame: pd.DataFrame) -> list[str]:
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
            parts.append(f"{SETTINGS[key]} {_setting_values(values, frame['label'])}")
    parts.append(f"seeds {', '.join(str(s) for s in sorted(frame['seed'].unique()))}")
    if name != "cost":
        reports = set(frame["report"])
        parts.append("accuracy of the final epoch" if reports == {"final"} else "mixed reporting (see †)")
    notes = ["Settings: " + "; ".join(parts) + "."]
    if name not in ("cost", "differences"):
        notes.append(f"Cells: mean ± std (n seeds) over several seeds. Bold: the best of our rows, only where its lead over the "
                     f"runner-up is real (the {CONFIDENCE:.0%} Student-t interval of their paired difference over common seeds "
                     "excludes 0; never with one seed).")
    if frame["label"].str.contains(DATA_MARK, regex=False).any():
        notes.append("[data …]: rows of one cell computed on different data (their data fingerprints differ: another "
                     "preparation, file or version of the dataset), shown apart and never averaged; `halp-bench data "
                     "DATASET --split SPLIT` prints the fingerprint of the data at hand.")
    if name != "cost" and "best" in set(frame["report"]):
        every = ", ".join(str(int(v)) for v in frame.loc[frame["report"] == "best", "eval_every"].dropna().unique())
        notes.append(f"{DAGGER} Best test accuracy over evaluations every {every} epochs (eval.report=best, the official "
                     "code's reporting; optimistic). Numbers without † are the final epoch's.")
    return notes


def _setting_values(values: pd.Series, labels: pd.Series) -> str:
    """One setting's values over a table's rows: the value when all share it, else each value
    with the rows that have it (so a reader knows e.g. which method ran on which encoder)."""
    present = values.dropna()
    distinct = list(dict.fromkeys(str(v) for v in present))
    if len(distinct) == 1:
        return distinct[0]
    rows = {value: list(dict.fromkeys(labels[present.index[present.astype(str) == value]])) for value in distinct}
    return ", ".join(f"{value} ({', '.join(sorted(rows[value], key=_row_key))})" for value in distinct)


def _add_paper(table: Table, paper: dict[str, Any]) -> None:
    """Append the published rows ("<method> (paper)") and a note saying where they come from."""
    published = paper.get(table.name, {})
    if not published:
        table.notes.append("No published numbers for this table in the paper's main text.")
        return
    dagger = table.name in paper.get("best_over_evaluations", [])
    sources = {label: source for label, source in paper.get("sources", {}).items() if label in published}
    for label, values in published.items():  # in the paper's order
        if table.name == "cost":
            cells: dict[str, Cell | str] = {"pretrained on": MISSING}
            for col, key in ((f"time ×{BASELINE}", "time_x"), (f"mem ×{BASELINE}", "memory_x")):
                cells[col] = Cell((float(values[key]),), digits=2, suffix="×")
        else:
            cells = {col: Cell((float(v),), dagger=dagger) for col, v in values.items()}
            table.columns += [col for col in sorted(cells, key=_column_key) if col not in table.columns]
        table.rows.append((f"{label} ({'published' if label in sources else 'paper'})", cells))
        table.paper_rows += 1
    note = f"Rows “(paper)”: published numbers ({paper['source']})"
    if sources:
        note += "; rows “(published)”: the field's methods as their authors published them (" + "; ".join(
            f"{label}: {source}" for label, source in sources.items()) + ")"
    note += "; the official code reports the best test accuracy over evaluations (†)." if dagger else "."
    if table.name == "cost":
        note += " The paper gives only ratios to its baseline."
    table.notes.append(note)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _best(table: Table) -> dict[str, int]:
    """Per column, the row index of our best mean, where its lead over the runner-up is real: the
    95 % interval of their paired difference over common seeds excludes zero (results/stats.py).
    With one seed, or fewer than two of our rows, nothing is bold."""
    if not table.bold_best:
        return {}
    ours = table.rows[: len(table.rows) - table.paper_rows]
    best = {}
    for col in table.columns:
        ranked = sorted(((cells[col], i) for i, (_, cells) in enumerate(ours) if isinstance(cells.get(col), Cell)),
                        key=lambda item: -item[0].mean)
        if len(ranked) >= 2:
            (first, index), (second, _) = ranked[0], ranked[1]
            lead = paired_difference(first.by_seed, second.by_seed)
            if lead is not None and lead.significant and lead.mean > 0:
                best[col] = index
    return best


def _texts(table: Table) -> list[list[tuple[str, bool]]]:
    """Every row as (text, bold) pairs: the label, then each column's cell; bold on the best."""
    best = _best(table)
    lines = []
    for index, (label, cells) in enumerate(table.rows):
        line = [(label, False)]
        for col in table.columns:
            cell = cells.get(col, MISSING)
            if isinstance(cell, str):
                line.append((cell, False))
            else:
                line.append((cell.text(), best.get(col) == index))
        lines.append(line)
    return lines


def _align(table: Table, column: str) -> str:
    return "left" if column in table.text_columns else "right"


def to_markdown(table: Table) -> str:
    lines = [[f"**{text}**" if bold else text for text, bold in line] for line in _texts(table)]
    frame = pd.DataFrame(lines, columns=[table.first_column, *table.columns])
    body = frame.to_markdown(index=False, colalign=["left", *(_align(table, col) for col in table.columns)], disable_numparse=True)
    return "\n\n".join([f"**{table.title}**", body, *table.notes]) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "−": r"$-$", DAGGER: r"$^\dagger$", "×": r"$\times$", "→": r"$\rightarrow$", MISSING: "--",
                  "λ": r"$\lambda$", "“": "``", "”": "''"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SYMBOLS.get(ch, _LATEX_ESCAPES.get(ch, ch)) for ch in text)


def to_latex(table: Table) -> str:
    """A `table` float with a booktabs `tabular`; needs only \\usepackage{booktabs}."""
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:halp-bench-{table.name}}}",
        rf"\begin{{tabular}}{{l{''.join(_align(table, col)[0] for col in table.columns)}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in [table.first_column, *table.columns]) + r" \\",
        r"\midrule",
    ]
    ours = len(table.rows) - table.paper_rows
    for index, line in enumerate(_texts(table)):
        if index == ours and 0 < ours:
            lines.append(r"\midrule")
        cells = [rf"\textbf{{{latex_escape(text)}}}" if bold else latex_escape(text) for text, bold in line]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize " + r" \\ ".join(latex_escape(n) for n in table.notes) + "}"]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


RENDERERS = {"md": to_markdown, "tex": to_latex}


def check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in RENDERERS]
    if unknown or not formats:
        raise ConfigError(f"unknown format(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FORMATS)}")


def write_tables(tables: list[Table], out_dir: Path, formats: tuple[str, ...] = FORMATS) -> list[tuple[Path, str]]:
    """`<out_dir>/<table>.<format>` for each table and format, each written atomically; returns
    (path, text) pairs so that the caller can print what it wrote."""
    check_formats(formats)
    written = []
    for table in tables:
        for fmt in formats:
            path = Path(out_dir) / f"{table.name}.{fmt}"
            text = RENDERERS[fmt](table)
            atomic_write_bytes(path, lambda handle, text=text: handle.write(text.encode("utf-8")))
            written.append((path, text))
    return written
