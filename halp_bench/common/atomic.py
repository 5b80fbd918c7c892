"""Atomic, durable files: a reader sees the old file or the complete new one, never a torn one.

Kept free of torch so that dataset preparation workers can use it without importing torch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from halp_bench.errors import OutputError

TEMP_SUFFIX = ".tmp"
FILE_MODE = 0o644  # what a plain `open(path, "w")` gives under the usual umask


def atomic_write_bytes(path: Path, write: Callable[[Any], object]) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, fsync it, then rename it over
    `path` and fsync the directory, so a reader (or a rerun after a kill or a power cut) sees either
    the old file or the complete new one, never a torn one. A failed write (disk full, read-only
    directory) is an OutputError naming `path`; the temporary file is removed."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600: results, tables and checkpoints are for sharing
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise OutputError(path, f"cannot write ({exc.strerror or exc}); is the disk full or the directory read-only?") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def remove_temporaries(path: Path) -> None:
    """Delete temporary files that a writer of `path` killed mid-write left behind."""
    for leftover in Path(path).parent.glob(f".{Path(path).name}.*{TEMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)
