"""One file per finished grid cell, merged with results.jsonl on reading.

A grid cell's row is written to `<out>/cells/<cell>.json` (results/store.py's `load_results` reads
them after the rows of `results.jsonl`), each file written whole by one atomic rename. Why not an
append under a lock: on a network file system an append is not atomic across nodes (the NFS client
writes at the size it last saw) and file locks hold only where the mount has working lock support
(`nolock` or `local_lock=all` mounts make them node-local without an error). A create-and-rename in
one directory is atomic on every NFS version, so many processes on many nodes can finish cells of
one store at once: a cell has one file, whoever writes it, and running a cell again (`--force`)
replaces it. Each row is also appended to results.jsonl with `cell_file` naming its file, a log for
people and tools that read that file; readers of the store skip those copies (the cell file is the
row), so a torn or repeated line there (appends from several nodes) costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from halp_bench.common.atomic import atomic_write_bytes

CELLS_DIR = "cells"  # beside results.jsonl
CELL_FILE_FIELD = "cell_file"  # in results.jsonl's copy of a row: the cell file that holds it


def cell_file_name(key: tuple) -> str:
    """`<method>_<protocol>_seed<s>_<hash of the whole cell key>.json`: readable, and one name per cell."""
    digest = hashlib.sha256(json.dumps([str(part) for part in key]).encode()).hexdigest()[:16]
    method, protocol, seed = str(key[0]), str(key[3]), str(key[5])
    clean = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{method}_{protocol}_seed{seed}")[:60]
    return f"{clean}_{digest}.json"


def store_cell_row(out: Path, key: tuple, row: dict[str, Any]) -> Path:
    """Write the row of the cell `key` (ResultRow.key) as its own file, atomically; return the file."""
    from halp_bench.results.store import _jsonable  # the store's one rule for what a row may hold

    path = Path(out) / CELLS_DIR / cell_file_name(key)
    text = (json.dumps(row, sort_keys=True, default=_jsonable) + "\n").encode()
    atomic_write_bytes(path, lambda handle: handle.write(text))
    return path


def has_cell_files(results_file: Path) -> bool:
    """Whether a store's results.jsonl has cell files beside it."""
    folder = Path(results_file).parent / CELLS_DIR
    return Path(results_file).name == "results.jsonl" and folder.is_dir() and any(folder.glob("[!.]*.json"))


def cell_rows(results_file: Path) -> list[dict[str, Any]]:
    """The rows of the cell files beside `results_file` (only for a store's `results.jsonl`), in the
    order they were written, as appended rows are; an unreadable file is skipped with a warning naming it."""
    folder = Path(results_file).parent / CELLS_DIR
    if not folder.is_dir():
        return []
    rows = []
    for path in sorted(folder.glob("[!.]*.json")):
        try:
            row, written = json.loads(path.read_text(encoding="utf-8")), path.stat().st_mtime_ns
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: not a readable result row ({exc}); skipped", stacklevel=2)
            continue
        if isinstance(row, dict):
            rows.append((str(row.get("finished", "")), written, row))
    return [row for *_, row in sorted(rows, key=lambda item: item[:2])]  # finished to the second, then the file's write time
