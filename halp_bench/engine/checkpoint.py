"""Checkpoints: written atomically (common/atomic.py) and loaded without running code
(`weights_only=True`)."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.config import RunConfig
from halp_bench.errors import CheckpointError
from halp_bench.identity import pretrain_signature

CHECKPOINT_FORMAT = 3  # 3: projection heads belong to the methods, settings per plugin


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    atomic_write_bytes(path, lambda handle: torch.save(state, handle))


RETRAIN = "delete it to start this cell over, or use --force"


def load_checkpoint(path: Path, remedy: str = RETRAIN) -> dict[str, Any]:
    """Load with `weights_only=True`: tensors and plain containers only, no code execution.

    torch's own messages run to several lines; the CLI shows one, so the reason is distilled here.
    `remedy` ends the message of a corrupt file: what the caller's user can do about it.
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
        raise CheckpointError(path, f"is corrupt or truncated ({reason}); {remedy}") from None
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


def check_compatible(state: dict[str, Any], method_name: str, cfg: RunConfig, path: Path) -> None:
    """Refuse to resume a checkpoint made by another method or with other pretraining settings."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            path,
            f"checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT} (written by another halp-bench "
            "version, which cannot be resumed; its stored results still count); delete it, use another --out or --force",
        )
    if state.get("method") != method_name:
        raise CheckpointError(path, f"was made by method '{state.get('method')}', not '{method_name}'; use another --out or --force")
    ours, theirs = pretrain_signature(method_name, cfg), state.get("config", {})
    diffs = [
        f"{section}.{key}: checkpoint {theirs.get(section, {}).get(key)!r} vs now {value!r}"
        for section, values in ours.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if _normalise(theirs.get(section, {}).get(key)) != _normalise(value)
    ]
    diffs += [
        f"{key}: checkpoint {theirs.get(key)!r} vs now {value!r}" for key, value in ours.items() if not isinstance(value, dict) and theirs.get(key) != value
    ]
    if diffs:
        raise CheckpointError(path, "was made with other pretraining settings (" + "; ".join(diffs[:4]) + "); use another --out or --force")


def _normalise(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value
