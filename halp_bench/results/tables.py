"""The paper's tables from the results store, in Markdown (tabulate) and LaTeX (booktabs).

Tables: `linear` (Table 1: rows methods, columns dataset/split), `knn` (Table 2), `transfer`
(Table 3: columns "source -> target"), `cost` (Table 4: time per epoch and peak memory, absolute and
relative to each method's base), `semi` (columns dataset/split and labelled fraction),
`ablations` (the ablation family's rows and their bases, linear) and `differences` (each method
against its base, paired over seeds, only between rows of one comparison key: results/pairing.py).

Everything comes from the stored rows (JSON): rows are ordered by their method's declared family
and place (declarations.py), labelled by results/labels.py; no plugin is imported for rows of the
current format. A cell is the mean over seeds, "mean ± std" when there are several; the best of
our rows in each column is bold. Rows differing in a setting the method's ablations vary get
their own label, e.g. "halp (λ=0.6)"; rows of one cell computed on different data (their data fingerprints differ)
are never averaged either: each gets "[data <fingerprint>]" and the table a note saying why.
Numbers reported as the best test accuracy over evaluations (`eval.report=best`, the official
code's way) carry a dagger and a footnote, and every table ends with the settings that make its
numbers comparable, so a pasted table never loses them. `with_paper` adds the published
numbers (`paper_results.json`) as rows labelled "(paper)"; a cell nobody measured shows "–".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from halp_bench.config import flat_items
from halp_bench.errors import ConfigError
from halp_bench.identity import cell_identity, neutral_items, short_hash
from halp_bench.results.labels import NOT_DISTINGUISHING, separate, separate_data, shorten, variant_label
from halp_bench.results.pairing import cost_base, differences_table
from halp_bench.results.render import FORMATS, RENDERERS, check_formats, latex_escape, to_latex, to_markdown, write_tables
from halp_bench.results.row import CELL_FIELDS, ResultRow
from halp_bench.results.settings_line import by_label, ordered, settings_notes
from halp_bench.results.table_model import MISSING, Cell, DifferenceCell, Table

__all__ = [
    "FORMATS",
    "RENDERERS",
    "TABLES",
    "Cell",
    "DifferenceCell",
    "Table",
    "build_tables",
    "check_formats",
    "latex_escape",
    "results_frame",
    "to_latex",
    "to_markdown",
    "variant_label",
    "write_tables",
]

TABLES = ("linear", "knn", "transfer", "finetune", "cost", "semi", "ablations", "differences")
PAPER_COLUMNS = ("ntu60/xsub", "ntu60/xview", "ntu120/xsub", "ntu120/xset", "pku2/xsub")
PAPER_FILE = Path(__file__).with_name("paper_results.json")
FRAME_COLUMNS = [
    *CELL_FIELDS,
    "config_id",
    "label",
    "pretrain_label",
    "data",
    "pretrained_on",
    "top1",
    "metrics",
    "report",
    "eval_every",
    "pretrain_epochs_run",
    "time_per_epoch_s",
    "peak_memory_increase_mb",
    "device",
    "finished",
    "data_id",
    "pretrain_data_id",
    "rank",
    "family",
    "variant",
    "compared_to",
    "comparison_key",
    "pretrain_key",
    "encoder_text",
]


def results_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """One line per stored row (FRAME_COLUMNS and `setting.*`), the latest row winning when a
    cell was run twice; rows of one method with different settings in the same cell get labels
    that say how they differ (labels.separate), so a cell never averages them."""
    records = []
    for row in rows:
        pre = row.pretrain
        declaration, variant, key = row.table_fields()
        pretraining = {k: v for k, v in flat_items(row.pretrain_config).items() if k not in NOT_DISTINGUISHING}
        records.append(
            {
                **{f: getattr(row, f) for f in CELL_FIELDS},
                "config_id": row.config_id,
                "label": variant_label(row, variant),
                "rank": declaration.sort_key,
                "family": declaration.family,
                "variant": variant,
                "compared_to": declaration.compared_to,
                "comparison_key": key,
                # the pretraining less the method's own settings (and seed): what a cost ratio needs equal
                "pretrain_key": short_hash({k: v for k, v in pretraining.items() if not k.startswith("method.")}) + f"<{_pretrain_data_id(row)}",
                "encoder_text": str(row.settings.get("encoder") or row.config.get("encoder", {}).get("name", "")),
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
                "flat_config": _identity_items(row),
                # the pretraining's settings less the seed and the like: the seeds of one cell are one row of the cost table
                "pretrain_id": short_hash(pretraining),
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
    frame = frame.assign(pretrain_label=separate(frame, "pretrain_id", "flat_pretrain", ["label", "pretrained_on"]))
    frame = frame.assign(pretrain_label=separate_data(frame, "pretrain_data_id", "pretrain_label", ["pretrain_label", "pretrained_on"]))
    frame = frame.assign(label=separate(frame, "config_id", "flat_config", ["label", "protocol", "dataset", "split", "transfer_from"]))
    return frame.assign(label=separate_data(frame, "data_id", "label", ["label", "protocol", "dataset", "split", "transfer_from"]))


def _identity_items(row: ResultRow) -> dict[str, Any]:
    """The settings a row's config id hashes, as `section.key`, a setting at its neutral value named
    by that value, so that rows stored before a setting existed and settings their protocol never
    reads label no row. Released weights and ensembles: their whole configuration."""
    if row.weights or row.config.get("ensemble") or not row.pretrain_config:
        return flat_items(row.config)
    identity = cell_identity(row.protocol, row.config, row.pretrain_config)
    neutral = neutral_items(row.method, str(row.config.get("encoder", {}).get("name", "")))
    return {**neutral, **flat_items(identity["pretraining"]), **flat_items({"data": identity["data"]}), **flat_items(identity["protocol"])}


def _pretrain_data_id(row: ResultRow) -> str | None:
    """The fingerprint hash of the split the row's encoder was pretrained on (None: an older row)."""
    fingerprint = row.data_fingerprint
    return fingerprint.get("pretrained_on", fingerprint.get("evaluated_on", {})).get("hash") if fingerprint else None


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
    builders = {
        "linear": _linear,
        "knn": _knn,
        "transfer": _transfer,
        "finetune": _finetune,
        "cost": _cost,
        "semi": _semi,
        "ablations": _ablations,
        "differences": _differences,
    }
    tables = []
    for name in names:
        table = builders[name](frame)
        _legend(table)
        if paper is not None:
            _add_paper(table, paper)
        if table.rows:
            tables.append(table)
    return tables


def _floats(values: pd.Series) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _legend(table: Table) -> None:
    """Labels too long for a column become "<method> [n]", spelled out in a note (labels.shorten)."""
    shown, legend = shorten([label for label, _ in table.rows], table.methods)
    if not legend:
        return
    table.rows = [(shown[label], cells) for label, cells in table.rows]
    for mapping in (table.methods, table.bases, table.ranks):
        for label in [label for label in mapping if shown.get(label, label) != label]:
            mapping[shown[label]] = mapping.pop(label)
    table.notes.append("Labels: " + "; ".join(legend) + ".")


def _column_key(column: str) -> tuple[int, str]:
    data = column.split(" ")[0]
    return (PAPER_COLUMNS.index(data) if data in PAPER_COLUMNS else -1, column)


def _accuracy(name: str, title: str, sub: pd.DataFrame, column: pd.Series, value: pd.Series, columns: list[str] | None = None) -> Table:
    """Rows = labels, columns = `column`, cells = `value` over seeds (latest row per seed)."""
    sub = sub.assign(column=column, value=value).dropna(subset=["value"])
    latest = sub.drop_duplicates(["label", "column", "seed"], keep="last")
    cells: dict[str, dict[str, Cell | str]] = {}
    for (label, col), group in latest.groupby(["label", "column"], sort=False):
        cells.setdefault(label, {})[col] = Cell(
            _floats(group["value"]),
            dagger=bool((group["report"] == "best").any()),
            seeds=tuple(int(s) for s in group["seed"]),
            keys=tuple(sorted(set(group["comparison_key"].astype(str)))),
        )
    order = columns if columns is not None else sorted(set(latest["column"]), key=_column_key)
    ranks = by_label(latest, "rank")
    rows = [(label, cells[label]) for label in ordered(cells, ranks)]
    return Table(
        name,
        title,
        list(order),
        rows,
        notes=settings_notes(name, latest),
        methods=by_label(latest, "method"),
        bases=by_label(latest, "compared_to"),
        ranks=ranks,
    )


def _linear(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "linear") & frame["transfer_from"].isna()]
    return _accuracy("linear", "Table 1: linear evaluation, top-1 (%)", sub, sub["data"], sub["top1"])


def _knn(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "knn") & frame["transfer_from"].isna()]
    return _accuracy("knn", "Table 2: kNN, top-1 (%)", sub, sub["data"], sub["top1"])


def _transfer(frame: pd.DataFrame) -> Table:
    sub = frame[frame["protocol"] == "transfer"]
    return _accuracy(
        "transfer", "Table 3: transfer (fine-tuned on the target), top-1 (%)", sub, transfer_column(sub["transfer_from"], sub["data"]), sub["top1"]
    )


def _finetune(frame: pd.DataFrame) -> Table:
    sub = frame[(frame["protocol"] == "finetune") & frame["transfer_from"].isna()]
    return _accuracy("finetune", "Fine-tuning on the pretraining data, top-1 (%)", sub, sub["data"], sub["top1"])


def transfer_column(source: pd.Series, target: pd.Series) -> pd.Series:
    return source.astype(str) + " → " + target.astype(str)


def _ablations(frame: pd.DataFrame) -> Table:
    """The linear rows of the ablation family, of the methods they ablate (their bases) and of any
    method with a row whose declared ablation settings differ from its defaults (e.g. λ=0.6)."""
    linear = frame[(frame["protocol"] == "linear") & frame["transfer_from"].isna()]
    ablated = set(linear.loc[linear["family"] == "ablations", "compared_to"].dropna())
    ablated |= set(linear.loc[linear["variant"] != "", "method"])
    sub = linear[(linear["family"] == "ablations") | linear["method"].isin(ablated)]
    title = f"Ablations of {', '.join(sorted(ablated)) or 'the ablation family'}: linear evaluation, top-1 (%)"
    return _accuracy("ablations", title, sub, sub["data"], sub["top1"])


def _semi(frame: pd.DataFrame) -> Table:
    """One row of `semi` metrics (`top1@1%`, ...) becomes one line per labelled fraction."""
    sub = frame[frame["protocol"] == "semi"]
    lines = [
        {**row, "fraction": float(key[len("top1@") : -1]), "value": value}
        for row in sub.to_dict("records")
        for key, value in row["metrics"].items()
        if key.startswith("top1@") and key.endswith("%")
    ]
    long = pd.DataFrame(lines, columns=[*sub.columns, "fraction", "value"])
    long = long.assign(column=long["data"] + " " + long["fraction"].map(lambda f: f"{f:g}%"))
    order = list(dict.fromkeys(long.sort_values(["data", "fraction"])["column"]))
    return _accuracy(
        "semi", "Semi-supervised fine-tuning with a fraction of the training labels, top-1 (%)", long, long["column"], long["value"], columns=order
    )


COST_COLUMNS = ["pretrained on", "time/epoch (s)", "base", "time ×base", "peak mem (MB)", "mem ×base"]


def _cost(frame: pd.DataFrame) -> Table:
    """Per pretraining (method, data): time per epoch and peak memory, and their ratio to the
    method's base pretrained under the same key (pairing.cost_base)."""
    sub = frame[(frame["pretrain_epochs_run"] > 0) & (frame["time_per_epoch_s"].fillna(0) > 0)]
    sub = sub.assign(label=sub["pretrain_label"])  # one row per pretraining, whatever the protocols' settings
    per_seed = (
        sub.groupby(["pretrained_on", "label", "seed"], sort=False)
        .agg(time=("time_per_epoch_s", "max"), memory=("peak_memory_increase_mb", "max"), key=("pretrain_key", "last"))
        .reset_index()
    )
    ranks, methods, bases = by_label(sub, "rank"), by_label(sub, "method"), by_label(sub, "compared_to")
    rows: list[tuple[str, dict[str, Cell | str]]] = []
    unmatched: set[str] = set()
    for data in sorted(set(per_seed["pretrained_on"]), key=_column_key):
        group = per_seed[per_seed["pretrained_on"] == data]
        keys = {label: str(key) for label, key in zip(group["label"], group["key"])}
        for label in ordered(set(group["label"]), ranks):
            mine = group[group["label"] == label]
            base_label = cost_base(label, bases[label], keys[label], {other: (methods[other], keys[other]) for other in keys})
            cells: dict[str, Cell | str] = {
                "pretrained on": data,
                "time/epoch (s)": Cell(_floats(mine["time"]), digits=2),
                "peak mem (MB)": Cell(_floats(mine["memory"].fillna(0)), digits=0),
            }
            base = group[group["label"] == base_label]
            if bases[label] and base.empty:
                unmatched.add(label)
            for col, key in (("time ×base", "time"), ("mem ×base", "memory")):
                if not base.empty and base[key].mean() > 0:
                    cells["base"] = str(base_label)
                    cells[col] = Cell((mine[key].mean() / base[key].mean(),), digits=2, suffix="×")
            rows.append((label, cells))
    latest = sub.drop_duplicates(["pretrained_on", "label", "seed"], keep="last")
    notes = settings_notes("cost", latest)
    if rows:
        devices = ", ".join(sorted(set(latest["device"].astype(str))))
        notes.insert(
            0,
            f"Pretraining on {devices}. Time per epoch: training only (no evaluation, no checkpoint "
            f"writes). Peak mem: the most memory pretraining added to the process (CUDA: allocated "
            f"tensors; CPU: resident set). Ratios are to the method's base (the method it builds on), "
            f"pretrained on the same data with the same encoder, views, schedule and precision.",
        )
    if unmatched:
        notes.append(f"No ratio for {', '.join(ordered(unmatched, ranks))}: the base was not pretrained under the same settings.")
    return Table(
        "cost",
        "Table 4: pretraining cost",
        COST_COLUMNS,
        rows,
        notes=notes,
        bold_best=False,
        text_columns=("pretrained on", "base"),
        methods=methods,
        bases=bases,
        ranks=ranks,
    )


def _differences(frame: pd.DataFrame) -> Table:
    """Each method against the one it builds on (its declared `compared_to`), in every cell of the
    linear, kNN, transfer and finetune tables both have under one comparison key (results/pairing.py)."""
    return differences_table({"linear": _linear(frame), "knn": _knn(frame), "transfer": _transfer(frame), "finetune": _finetune(frame)})


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
            cells: dict[str, Cell | str] = {"pretrained on": MISSING, "base": str(paper.get("cost_baseline", MISSING))}
            for col, key in (("time ×base", "time_x"), ("mem ×base", "memory_x")):
                cells[col] = Cell((float(values[key]),), digits=2, suffix="×")
        else:
            cells = {col: Cell((float(v),), dagger=dagger) for col, v in values.items()}
            table.columns += [col for col in sorted(cells, key=_column_key) if col not in table.columns]
        table.rows.append((f"{label} ({'published' if label in sources else 'paper'})", cells))
        table.paper_rows += 1
    note = f"Rows “(paper)”: published numbers ({paper['source']})"
    if sources:
        note += (
            "; rows “(published)”: the field's methods as their authors published them ("
            + "; ".join(f"{label}: {source}" for label, source in sources.items())
            + ")"
        )
    note += "; the official code reports the best test accuracy over evaluations (†)." if dagger else "."
    if table.name == "cost":
        note += " The paper gives only ratios to its baseline."
    table.notes.append(note)
