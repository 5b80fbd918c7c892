"""What a stored result row must be before tables, plots or `run` use it: the schema (the cell's
coordinates as strings, the seed a whole number, the metrics a dict of numbers) and the ranges of
the values (accuracies are percentages in [0, 100], every metric finite, costs not negative).

`row_problem` says what is wrong with a row, or None; results/row.py `read_rows` reports each bad
line once, with its file and line number as a torn line is, and leaves it out, so a hand-edited or
foreign line is neither averaged into a table nor able to stop a command.
"""

from __future__ import annotations

import math
from typing import Any

TEXT_FIELDS = ("method", "dataset", "split", "protocol", "preset")
ACCURACY_MARKERS = ("top1", "top5")  # metrics in percent: top1, top5, final_top1, top1@10%, ...
SECTIONS = ("settings", "config", "pretrain_config", "versions", "data_fingerprint")
REPORTS = ("final", "best")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics_problem(metrics: Any) -> str | None:
    if not isinstance(metrics, dict) or not metrics:
        return "'metrics' is not a non-empty object"
    for name, value in metrics.items():
        if not _is_number(value):
            return f"metric '{name}' is {value!r}, not a number"
        if not math.isfinite(value):
            return f"metric '{name}' is {value}"
        if any(marker in name for marker in ACCURACY_MARKERS) and not 0 <= value <= 100:
            return f"metric '{name}' is {value:g}, outside 0 to 100 %"
    return None


def _pretrain_problem(pretrain: Any) -> str | None:
    if not isinstance(pretrain, dict):
        return "'pretrain' is not an object"
    for name, value in pretrain.items():
        if name in ("final_loss", "precision"):
            continue
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            return f"pretrain.{name} is {value!r}, not a finite number >= 0"
    return None


def row_problem(row: Any) -> str | None:
    """Why `row` (a parsed JSON line) is not a valid result row, or None."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    missing = [name for name in (*TEXT_FIELDS, "seed", "metrics") if name not in row]
    if missing:
        return f"missing {', '.join(repr(m) for m in missing)}"
    for name in TEXT_FIELDS:
        if not isinstance(row[name], str) or not row[name]:
            return f"'{name}' is {row[name]!r}, not a name"
    if isinstance(row["seed"], bool) or not isinstance(row["seed"], int) or row["seed"] < 0:
        return f"'seed' is {row['seed']!r}, not a whole number >= 0"
    if row.get("row_format", 1) != 1 and not isinstance(row.get("config_id"), str):
        return f"'config_id' is {row.get('config_id')!r}, not a string"
    if not isinstance(row.get("transfer_from"), (str, type(None))):
        return f"'transfer_from' is {row['transfer_from']!r}, not a dataset name"
    if row.get("report", "final") not in REPORTS:
        return f"'report' is {row['report']!r}, not one of {', '.join(REPORTS)}"
    for name in SECTIONS:
        if not isinstance(row.get(name, {}), dict):
            return f"'{name}' is not an object"
    return _metrics_problem(row["metrics"]) or _pretrain_problem(row.get("pretrain", {}))
