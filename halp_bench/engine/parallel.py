"""Data-parallel pretraining under `torchrun` (gloo on CPU, NCCL on GPU); the identity without it.

Design: the whole method is wrapped in DistributedDataParallel through `_Step`, whose forward is
`training_step`, so gradients of every trainable parameter (the query encoders and heads) are
averaged across ranks while the method keeps calling its own modules. The key encoders are EMA
copies without gradients: identical query encoders and a deterministic EMA keep them identical on
every rank. Keys are all-gathered before they enter the queue (`common.distributed.gather_keys`),
so every rank holds the same queue of global batches, and prototypes clustered from it with
identically seeded generators are the same everywhere (tests/test_ddp.py compares them). Rank 0
alone writes files.
"""

from __future__ import annotations

import atexit
import inspect
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from halp_bench.common.distributed import active, env_world_size
from halp_bench.errors import ConfigError


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT)
    once per process; return this rank's device (cuda:LOCAL_RANK on GPU). No-op when WORLD_SIZE <= 1."""
    if env_world_size() <= 1:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"torchrun: device {device.type} is not supported (use cpu with gloo or cuda with NCCL)")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(dist.destroy_process_group)
    return device


class _Step(nn.Module):
    """DDP calls `forward`; this makes it the method's training step."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch: Any) -> dict[str, Tensor]:
        return self.method.training_step(batch)


def prepare(method: nn.Module, sync_batchnorm: bool) -> None:
    """Before the optimiser is built: SyncBatchNorm in place (the optimiser keeps the same parameters)."""
    if not sync_batchnorm:
        return
    if not active():
        return  # one process: plain BatchNorm already sees the whole batch
    if next(method.parameters()).device.type != "cuda":
        raise ConfigError("sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel)")
    nn.SyncBatchNorm.convert_sync_batchnorm(method)  # replaces the BatchNorm children in place


def training_step_fn(method: nn.Module) -> Callable[[Any], dict[str, Tensor]]:
    """`method.training_step`, through DDP when distributed. Call after the checkpoint is loaded
    (DDP starts from rank 0's weights). Buffers (queues, prototypes) are not broadcast per step:
    every rank computes the same ones."""
    if not active():
        return method.training_step
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters  # newer torch renamed it
    return DistributedDataParallel(_Step(method), **{"forward_sync_buffers" if newer else "broadcast_buffers": False})
