"""What every protocol shares: one frozen context object and feature extraction."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.common.loggers import RunLogger
from halp_bench.config import RunConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.datasets.loader import BatchLoader
from halp_bench.datasets.views.cmd import center_crop_resize
from halp_bench.encoders import Encoder

Metrics = dict[str, float]


@dataclass(frozen=True)
class ProtocolContext:
    """The plumbing a protocol needs besides the encoder and the data."""

    cfg: RunConfig
    device: torch.device
    show_progress: bool = False
    say: Callable[[str], None] = print
    logger: RunLogger = field(default_factory=RunLogger)  # this cell's training log (common/loggers.py)
    # wraps the training of a classifier: `--compile` runs the encoder through torch.compile (engine/compile.py)
    compiled: Callable[[nn.Module], AbstractContextManager[Any]] = field(default=lambda module: nullcontext())


@torch.no_grad()
def extract_features(encoder: Encoder, subset: SkeletonSubset, ctx: ProtocolContext, *, normalise: bool = True) -> tuple[Tensor, Tensor]:
    """Pre-projection features of every sample (centre crop, eval mode): ((N, F), labels (N,))."""
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    for x, lengths, y in BatchLoader(subset, ctx.cfg.eval.batch_size, ctx.device):
        view = center_crop_resize(x, lengths, ctx.cfg.data.frames, ctx.cfg.eval.test_crop)
        f = encoder(view).float()
        feats.append(F.normalize(f, dim=1) if normalise else f)
        labels.append(y)
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def topk_accuracy(logits: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k accuracies in percent (k capped at the number of classes)."""
    out = {}
    for k in ks:
        kk = min(k, logits.shape[1])
        hit = (logits.topk(kk, dim=1).indices == labels.unsqueeze(1)).any(dim=1)
        out[f"top{k}"] = 100.0 * hit.float().mean().item()
    return out
