"""The thin contract every method fulfils; optimiser, precision, DDP and data belong to the engine.

A method owns its networks (query/key encoders, heads, queues) and turns one batch of two augmented
views into named losses. Variants subclass and override one named hook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from halp_bench.config import RunConfig
from halp_bench.encoders import SequenceEncoder
from halp_bench.registry import METHODS
from halp_bench.skeleton import SkeletonLayout


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about the data to build its networks."""

    in_channels: int  # C * V * M features per frame
    num_joints: int
    layout: SkeletonLayout


@dataclass
class Batch:
    """Two augmented views of the same samples, on the training device, and where training is."""

    view_q: Tensor  # (B, C, T, V, M)
    view_k: Tensor  # (B, C, T, V, M)
    epoch: int  # 0-based
    iteration: int  # within the epoch, 0-based


class Method(nn.Module):
    """Base class. `pretrains = False` marks reference rows (e.g. `random`) the engine does not train."""

    pretrains: bool = True

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.info = info

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        """Named losses for one batch; the entry `loss` is what the engine back-propagates."""
        raise NotImplementedError

    def encoder_for_eval(self) -> SequenceEncoder:
        """The encoder the downstream protocols evaluate (the joint-stream query encoder)."""
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """Parameter groups for the optimiser (default: every trainable parameter, one group)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]


def create_method(name: str, cfg: RunConfig, info: DataInfo) -> Method:
    """Build a registered method by name."""
    return METHODS.get(name)(cfg, info)


def check_finite(losses: dict[str, Tensor]) -> None:
    """Raise FloatingPointError naming the first non-finite loss (the engine reports the epoch).

    One device-to-host sync per step (all losses checked together), not one per loss."""
    values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
    if bool(torch.isfinite(values).all()):
        return
    for name, value in losses.items():
        if not torch.isfinite(value).all():
            raise FloatingPointError(f"loss '{name}' is {value.item()}")
