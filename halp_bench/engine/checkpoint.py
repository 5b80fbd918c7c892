"""Atomic, durable checkpoint files loaded without running code (`weights_only=True`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from halp_bench.errors import CheckpointError


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, fsync it, then rename it over
    `path`, so a reader sees either the old file or the complete new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    atomic_write_bytes(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with `weights_only=True`: tensors and plain containers only, no code execution."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(path, "no such checkpoint") from None
    except Exception as exc:
        raise CheckpointError(path, f"cannot be loaded safely (corrupt, or holds objects other than tensors and plain data): {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"expected a dict of state, found {type(state).__name__}")
    return state
