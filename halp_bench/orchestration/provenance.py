"""What every result row records about how it was made: the code's commit, the library versions,
and the settings that decide whether two numbers can be compared."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

import halp_bench
from halp_bench.config import RunConfig


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(halp_bench.__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    return {"halp_bench": halp_bench.__version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def settings_summary(cfg: RunConfig) -> dict[str, object]:
    """The settings that decide whether two numbers can be compared, shown beside every table."""
    opt = cfg.pretrain
    return {
        "encoder": cfg.encoder.describe(),
        "frames": cfg.data.frames,
        "pretrain_epochs": opt.epochs,
        "pretrain_optimizer": f"{opt.optimizer} {opt.schedule}" + (f" ({opt.warmup_epochs} warm-up)" if opt.warmup_epochs else ""),
        "linear_epochs": cfg.linear.epochs,
        "linear_lr": cfg.linear.lr,
        "transfer_epochs": cfg.transfer.epochs,
        "knn_k": cfg.eval.knn_k,
        "stream": cfg.eval.stream,
        "report": cfg.eval.report,
        "normalize": cfg.data.normalize,
        "pipeline": cfg.data.pipeline,
        "protocol": cfg.eval.protocol,
    }
