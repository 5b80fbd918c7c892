"""Collective helpers that work the same alone and under `torchrun`: who this process is, and
gathering or averaging across ranks (identity with one process). Methods use them to keep their
queues identical on every rank; the engine and the runner to agree on when to stop and who writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0, or not launched by torchrun (readable before the process group exists)."""
    return int(os.environ.get("RANK", "0")) == 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def info() -> DistInfo:
    if not active():
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@torch.no_grad()
def gather_keys(keys: Tensor) -> Tensor:
    """Every rank's (B, D) keys concatenated in rank order (the global batch); identity alone."""
    if not active():
        return keys
    parts = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, keys.contiguous())
    return torch.cat(parts)


def gather_objects(obj: Any) -> list[Any]:
    """[obj of rank 0, rank 1, ...] on every rank (e.g. each rank's generator states)."""
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: dict[str, Tensor]) -> dict[str, Tensor]:
    """The mean of each tensor over ranks (logged losses are then those of the global batch)."""
    if not active() or not values:
        return values
    stacked = torch.stack([v.float() for v in values.values()])
    dist.all_reduce(stacked)
    return dict(zip(values, stacked / dist.get_world_size()))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on one (so that all stop together, none hangs)."""
    if not active():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    if active():
        dist.barrier()
