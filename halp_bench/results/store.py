"""Append-only results store: one JSON object per finished cell in `<out>/results.jsonl` (the
row type is results/row.py; this module only stores and reads JSON objects).

Appends are serialised by an exclusive file lock and fsynced, so runs sharing an output directory
never interleave or lose rows; a torn last line (power cut mid-write) is skipped with a warning.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from halp_bench.errors import HalpBenchWarning, OutputError

RESULTS_FILE = "results.jsonl"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


OUTPUT_MARKERS = (RESULTS_FILE, "runs", "tables", "cells", "claims", "jobs")  # what makes a directory a halp-bench output
PROBE_PREFIX = ".write-test."  # ensure_output_dir's probe: another run's, seen mid-check, is no foreign file


def ensure_output_dir(path: Path, force: bool = False) -> None:
    """Create `path` and prove it writable before any work starts, so that a bad `--out` (a file,
    a path under a file, a read-only or full disk) costs one clear line, not an epoch of training.
    A non-empty directory that is not a halp-bench output is refused unless `force`: a typo in
    `--out` must not scatter run folders among someone's other files."""
    if path.exists() and not path.is_dir():
        raise OutputError(path, "the output directory (--out) is a file, not a directory")
    if (
        path.is_dir()
        and not force
        and any(not p.name.startswith(PROBE_PREFIX) for p in path.iterdir())
        and not any((path / m).exists() for m in OUTPUT_MARKERS)
    ):
        raise OutputError(path, "the output directory (--out) is not empty and holds no halp-bench results; choose another or use --force")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=path)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(path, f"cannot write the output directory (--out): {exc.strerror or exc}") from None


def append_result(path: Path, row: dict[str, Any]) -> None:
    """Append one row as a single write under the lock, then fsync."""
    data = (json.dumps(row, sort_keys=True, default=_jsonable) + "\n").encode()
    try:
        with _locked(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size:  # a previous writer died mid-line: start ours on a fresh line
                    with open(path, "rb") as handle:
                        handle.seek(size - 1)
                        if handle.read(1) != b"\n":
                            data = b"\n" + data
                view = memoryview(data)
                while view:  # a short write (disk nearly full) goes on until it errors
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise OutputError(path, f"cannot append a result ({exc.strerror or exc}); is the disk full or the directory read-only?") from None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a result row")


def load_results(path: Path) -> list[dict[str, Any]]:
    """Every complete row; torn or corrupt lines are skipped with a warning naming the line. For a
    store's results.jsonl, the rows of its cell files (results/cell_files.py) follow those of the file."""
    return [row for _, row in load_numbered(path)]


def load_numbered(path: Path, keep_copies: bool = False) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) of every complete line; torn or corrupt lines are reported
    (`skip_line`) and left out. For a store's results.jsonl, (0, row) of each of its cell files
    follows, and the file's own copies of those rows are left out (the files are the rows) unless
    `keep_copies` (a reader that validates every line). A directory where the file should be is an
    OutputError."""
    from halp_bench.results.cell_files import CELL_FILE_FIELD, cell_rows

    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a directory, not a results file (results.jsonl); remove it or give the file's path")
    lines = _numbered_lines(path)
    beside = cell_rows(path) if path.name == RESULTS_FILE else []
    if beside and not keep_copies:
        lines = [(number, row) for number, row in lines if not (isinstance(row, dict) and CELL_FILE_FIELD in row)]
    return lines + [(0, row) for row in beside]


def _numbered_lines(path: Path) -> list[tuple[int, Any]]:
    if not path.exists():
        return []
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError:
                    skip_line(path, number, "not a complete JSON row (torn write?)")
    except OSError as exc:
        raise OutputError(path, f"cannot read the results file ({exc.strerror or exc})") from None
    return rows


def skip_line(path: Path, number: int, why: str) -> None:
    """Report a results line that is left out: one warning line naming the file and the line
    (the CLI prints each once, errors.HalpBenchWarning)."""
    warnings.warn(SkippedLine(f"{path} line {number}: {why}; skipped"), stacklevel=3)


class SkippedLine(HalpBenchWarning):
    """A line of a results file that is not a row; it is left out of every table and count."""
