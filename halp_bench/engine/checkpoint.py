"""Atomic, durable files (checkpoints, prepared arrays, logs) and checkpoints loaded without running
code (`weights_only=True`)."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from halp_bench.errors import CheckpointError, OutputError

TEMP_SUFFIX = ".tmp"


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


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    atomic_write_bytes(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with `weights_only=True`: tensors and plain containers only, no code execution.

    torch's own messages run to several lines; the CLI shows one, so the reason is distilled here.
    """
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": not the user's concern
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(path, "no such checkpoint") from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(path, _refusal(str(exc))) from None
    except Exception as exc:  # a truncated or overwritten file fails in many ways (zip, EOF, ...)
        reason = str(exc).split(". ")[0].strip() or type(exc).__name__
        raise CheckpointError(path, f"is corrupt or truncated ({reason}); delete it to start this cell over, or use --force") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"expected a dict of state, found {type(state).__name__}")
    return state


def _refusal(message: str) -> str:
    """One line from torch's weights-only refusal: what the file asked for that was refused."""
    name = re.search(r"GLOBAL (\S+)", message)
    if name:
        return f"refused to load: it asks for '{name.group(1)}', which is not a tensor or plain data (loading it could run code)"
    detail = [line for line in message.splitlines()[1:] if line.strip() and "Check the documentation" not in line]
    return f"refused to load: not a checkpoint of tensors and plain data ({(detail[-1] if detail else message).strip()[:120]})"
