"""The one result-row type: written by the runner (one per finished cell), read by tables and plots.

Rows are stored as JSON objects (results/store.py). `ResultRow.from_dict` reads rows of every
format: format 1 (before settings belonged to each plugin) is upgraded on reading, its
configuration put in today's shape and its `config_id` recomputed by today's rules
(identity.py), so old and new rows of the same settings count as the same cell (skipped by `run`,
averaged by `table`), and rows of different settings never share a cell. Fields added since
(`data_fingerprint`, `data_warnings`) have defaults, so older rows read as "fingerprint unknown".
Format 3 adds what tables need to read rows without importing any plugin: the method's
declaration (family, order, base, citation, ablation keys: declarations.py), the label part its
ablation settings make (`variant`) and the cell's comparison key (identity.comparison_key); rows
of earlier formats get them from the registry when tables read them (`table_fields`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halp_bench.declarations import Declaration
from halp_bench.errors import HalpBenchError
from halp_bench.results.cell_files import CELL_FILE_FIELD, has_cell_files
from halp_bench.results.store import load_numbered, skip_line
from halp_bench.results.validate import row_problem

ROW_FORMAT = 3
# `transfer_from` (source "dataset/split" of a transfer cell, else None) keeps NTU-60 -> PKU and
# NTU-120 -> PKU apart: both have dataset pku2.
CELL_FIELDS = ("method", "dataset", "split", "protocol", "preset", "seed", "transfer_from")


@dataclass
class PretrainSummary:
    """What the pretraining behind a cell cost and how it was run."""

    epochs: int = 0
    resumed_from: int = 0
    time_per_epoch_s: float = 0.0
    peak_memory_mb: float = 0.0
    peak_memory_increase_mb: float = 0.0
    final_loss: dict[str, float] = field(default_factory=dict)
    processes: int = 1
    batch_per_process: int = 0
    effective_batch: int = 0
    lr: float = 0.0
    precision: str = "32"
    compile_seconds: float = 0.0  # > 0: pretrained (in part) with --compile


@dataclass
class ResultRow:
    method: str
    dataset: str
    split: str
    protocol: str
    transfer_from: str | None
    preset: str
    seed: int
    config_id: str  # the cell's settings without the seed (identity.config_id)
    metrics: dict[str, float]
    report: str = "final"
    protocol_seconds: float = 0.0
    pretrain: PretrainSummary = field(default_factory=PretrainSummary)
    settings: dict[str, Any] = field(default_factory=dict)  # the comparability settings tables print
    config: dict[str, Any] = field(default_factory=dict)  # the cell's resolved configuration
    pretrain_config: dict[str, Any] = field(default_factory=dict)  # identity.pretrain_signature of its pretraining
    weights: dict[str, str] | None = None  # `eval --checkpoint`: the file's path, sha256, layout and origin
    git_commit: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    deterministic: bool = False
    threads: int | None = None  # CPU threads torch used when the cell finished (fixed for the whole of a deterministic run)
    run_dir: str = ""
    started: str = ""
    finished: str = ""
    # the data the cell was computed on: {"evaluated_on": DataFingerprint.to_dict(), "pretrained_on": ...
    # (transfer only)}; {} in rows from before fingerprints (datasets/quality/fingerprint.py)
    data_fingerprint: dict[str, Any] = field(default_factory=dict)
    data_warnings: list[str] = field(default_factory=list)  # the data check's warnings (datasets/quality/checks.py)
    # format 3: the method's declaration (declarations.Declaration.to_dict), the label part of its
    # ablation settings ("λ=0.6") and the comparison key; None / "" in rows of earlier formats
    declaration: dict[str, Any] | None = None
    variant: str = ""
    comparison_key: str = ""
    row_format: int = ROW_FORMAT

    @property
    def key(self) -> tuple:
        """The cell: its grid coordinates and its settings."""
        return tuple(getattr(self, f) for f in CELL_FIELDS) + (self.config_id,)

    @property
    def data(self) -> str:
        return f"{self.dataset}/{self.split}"

    @property
    def data_id(self) -> str | None:
        """The data fingerprint as one string (`data_id`); None for a row from before fingerprints."""
        return data_id(self.data_fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def table_fields(self) -> tuple[Declaration, str, str]:
        """(declaration, variant, comparison key) as stored; for a row of an earlier format (no
        declaration stored), from the registry and its stored configuration (imports the plugins)."""
        if self.declaration is not None and self.comparison_key:
            return Declaration.from_dict(self.declaration), self.variant, self.comparison_key
        from halp_bench.declarations import row_table_fields

        fields = row_table_fields(self.to_dict())
        return Declaration.from_dict(fields["declaration"]), fields["variant"], fields["comparison_key"]

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ResultRow:
        if row.get("row_format", 1) == 1:
            row = upgrade_format_1(row)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in known}
        pretrain_known = {f.name for f in dataclasses.fields(PretrainSummary)}
        values["pretrain"] = PretrainSummary(**{k: v for k, v in row.get("pretrain", {}).items() if k in pretrain_known})
        return cls(**values)


def data_id(fingerprint: dict[str, Any]) -> str | None:
    """One string for a row's data fingerprint: the evaluation split's hash, with the pretraining
    split's after a '<' for a transfer cell; None when there is none (an older row)."""
    if not fingerprint:
        return None
    evaluated = fingerprint["evaluated_on"]["hash"]
    return f"{evaluated}<{fingerprint['pretrained_on']['hash']}" if "pretrained_on" in fingerprint else evaluated


def read_rows(path: Path) -> list[ResultRow]:
    """Every valid row of a results file, of any format; a line that is not one (results/validate.py)
    is reported with its line number and left out, as a torn line is."""
    rows = []
    copies_held = has_cell_files(path)  # results.jsonl's copies of cell files are a log: the files are the rows
    for number, raw in load_numbered(path, keep_copies=True):
        problem = row_problem(raw)
        if problem is None and number and copies_held and CELL_FILE_FIELD in raw:
            continue
        if problem is None:
            try:
                rows.append(ResultRow.from_dict(raw))
                continue
            except (TypeError, ValueError, KeyError, AttributeError, HalpBenchError) as exc:  # e.g. a field of the wrong shape
                problem = f"unreadable ({type(exc).__name__}: {str(exc)[:80]})"
        skip_line(Path(path), number, f"not a valid result row: {problem}")
    return rows


def upgrade_format_1(row: dict[str, Any]) -> dict[str, Any]:
    """A format-1 row in today's shape. Its `config` had one `method` section holding every
    built-in method's fields and the projection head inside `encoder`; the method's own fields
    and the head's now form the method's settings. Rows of a method no longer registered keep a
    `config_id` of their whole configuration (seed excluded). Imports the plugins."""
    from halp_bench.identity import config_id, pretrain_signature, short_hash
    from halp_bench.registry import METHODS, load_plugins

    load_plugins()
    upgraded = dict(row, row_format=2)
    name, protocol = str(row.get("method")), str(row.get("protocol"))
    config = _upgrade_config(name, row.get("config", {}))
    pretrain_config = _upgrade_config(name, row.get("pretrain_config") or row.get("config", {}))
    upgraded["config"] = config
    if name in METHODS and config:
        upgraded["pretrain_config"] = pretrain_signature(name, pretrain_config)
        upgraded["config_id"] = config_id(name, protocol, config, pretrain_config)
    else:
        upgraded["config_id"] = short_hash({k: v for k, v in row.get("config", {}).items() if k not in ("seed", "device")})
    return upgraded


def _upgrade_config(method: str, old: dict[str, Any]) -> dict[str, Any]:
    """A format-1 configuration (or pretraining signature) in today's shape. Settings added since
    are absent: their neutral values (config.added) are what that version did."""
    from halp_bench.registry import METHODS

    if not old or method not in METHODS:
        return dict(old)
    new = {k: v for k, v in old.items() if k not in ("method", "encoder")}
    fields = {f.name for f in dataclasses.fields(METHODS.get(method).settings_class)}
    encoder = dict(old.get("encoder", {}))
    head = {k: encoder.pop(k) for k in ("proj_hidden", "proj_dim") if k in encoder}
    new["method"] = {k: v for k, v in {**old.get("method", {}), **head}.items() if k in fields}
    new["encoder"] = encoder
    new.setdefault("precision", "32")
    new.setdefault("sync_batchnorm", False)
    return new
