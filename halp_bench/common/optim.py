"""Optimisers and learning-rate schedules named in the settings (`config.OptimConfig`), shared by
pretraining and the protocols that train a classifier. They read the settings through the
`OptimSettings` protocol, so this neutral layer needs nothing of `config`.

- `sgd` (momentum, optional Nesterov) or `adamw` (betas), both with decoupled `weight_decay` as
  their PyTorch classes define it;
- `multistep`: lr x gamma at each milestone epoch (stepped once per epoch, exactly PyTorch's
  MultiStepLR, as every published recipe here uses);
- `cosine`: from lr down to `min_lr` over the run, stepped every batch;
- `warmup_epochs` > 0: a linear ramp from 0 over that many epochs, stepped every batch, before
  either schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, MultiStepLR

from halp_bench.errors import ConfigError


class OptimSettings(Protocol):
    """What an optimiser and its schedule are made from (`config.OptimConfig` is one)."""

    epochs: int
    lr: float
    momentum: float
    weight_decay: float
    milestones: Sequence[int]
    gamma: float
    optimizer: str
    nesterov: bool
    betas: Sequence[float]
    schedule: str
    warmup_epochs: int
    min_lr: float


def make_optimizer(param_groups: list[dict], opt: OptimSettings) -> torch.optim.Optimizer:
    if opt.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay, nesterov=opt.nesterov)
    if opt.optimizer == "adamw":
        if len(opt.betas) != 2:
            raise ConfigError(f"betas={opt.betas}: AdamW needs two values, e.g. 0.9,0.999")
        return torch.optim.AdamW(param_groups, lr=opt.lr, betas=(opt.betas[0], opt.betas[1]), weight_decay=opt.weight_decay)
    raise ConfigError(f"optimizer '{opt.optimizer}': choose sgd or adamw")


@dataclass
class Schedule:
    """A learning-rate scheduler and when to step it: after every batch or after every epoch."""

    scheduler: LRScheduler
    per_batch: bool

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if not self.per_batch:
            self.scheduler.step()


def lr_factor(step: int, opt: OptimSettings, steps_per_epoch: int) -> float:
    """The multiplier of `opt.lr` for the batch after `step` batches (per-batch schedules)."""
    warmup = opt.warmup_epochs * steps_per_epoch
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if opt.schedule == "multistep":
        return ramp * opt.gamma ** sum(step // steps_per_epoch >= m for m in opt.milestones)
    total = max(opt.epochs * steps_per_epoch - warmup, 1)
    progress = min(max(step - warmup, 0) / total, 1.0)
    floor = opt.min_lr / opt.lr if opt.lr else 0.0
    return ramp * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_schedule(optimizer: torch.optim.Optimizer, opt: OptimSettings, steps_per_epoch: int) -> Schedule:
    if opt.schedule not in ("multistep", "cosine"):
        raise ConfigError(f"schedule '{opt.schedule}': choose multistep or cosine")
    if opt.warmup_epochs < 0 or opt.warmup_epochs > opt.epochs:
        raise ConfigError(f"warmup_epochs={opt.warmup_epochs}: expected 0 to epochs ({opt.epochs})")
    if opt.schedule == "multistep" and not opt.warmup_epochs:
        return Schedule(MultiStepLR(optimizer, milestones=list(opt.milestones), gamma=opt.gamma), per_batch=False)
    steps = max(steps_per_epoch, 1)
    return Schedule(LambdaLR(optimizer, lambda step: lr_factor(step, opt, steps)), per_batch=True)
