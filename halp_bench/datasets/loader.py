"""Batches gathered by index from a (possibly memory-mapped) subset and sent to the device.

One background thread, kept for the loader's whole life (across epochs, like DataLoader's
persistent workers), reads `prefetch` batches ahead of the one training (pinned on CUDA, so the
copy to the GPU is asynchronous). A batch is one fancy-indexing gather: no per-sample Python work.
Every batch handed out is also the moment the process re-checks its share of the CPU cores
(common/cpu_share.py), since every training and evaluation loop runs through a loader.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from halp_bench.common import cpu_share
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.errors import ConfigError


class BatchLoader:
    """Yields (x (B,C,T,V,M), lengths (B,), labels (B,)) tensors on `device`.

    With `world_size` > 1 (DistributedSampler's role) every rank draws the same permutation from
    the shared seed and takes its disjoint slice of each global batch of `batch_size`: the epoch,
    its length and a resume position mean the same on every rank and in one process.
    """

    def __init__(
        self,
        subset: SkeletonSubset,
        batch_size: int,
        device: torch.device,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 2,
    ):
        if prefetch < 1:
            raise ConfigError(f"prefetch={prefetch}: expected at least one batch read ahead")
        self.subset, self.batch_size, self.device, self.prefetch = subset, batch_size, device, prefetch
        self._pool: ThreadPoolExecutor | None = None
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator
        self.rank, self.world_size = rank, world_size
        if world_size > 1 and (batch_size % world_size or not drop_last or len(subset) < batch_size):
            raise ConfigError(
                f"{world_size} processes: the global batch ({batch_size}) must be a multiple of the number of "
                f"processes and at most the {len(subset)} training samples, with drop_last"
            )
        if drop_last and len(subset) < batch_size:
            self.drop_last = False  # a tiny dataset still yields one (smaller) batch

    def __len__(self) -> int:
        n = len(self.subset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        if self.shuffle:
            return torch.randperm(len(self.subset), generator=self.generator).numpy()
        return np.arange(len(self.subset))

    def _load(self, positions: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        x, lengths, labels = self.subset.gather(positions)
        tensors = [torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(labels)]
        if self.device.type == "cuda":
            tensors = [t.pin_memory() for t in tensors]
        return tensors[0], tensors[1], tensors[2]

    def _reader(self) -> ThreadPoolExecutor:
        """The read-ahead thread, started on first use and shut down by `close` or with the loader."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="halp-bench-loader")
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        return self.batches()

    def batches(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """The epoch's batches from batch `start` on. The whole order is drawn (so the generator
        advances exactly as in a full epoch) and the first `start` batches are never read: this is
        how a run resumed in the middle of an epoch sees the rest of that epoch unchanged."""
        order = self._order()
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = batches[start : len(self)]
        if self.world_size > 1:
            per_rank = self.batch_size // self.world_size
            batches = [b[self.rank * per_rank : (self.rank + 1) * per_rank] for b in batches]
        reader, upcoming = self._reader(), iter(batches)
        pending: deque[Future[tuple[Tensor, Tensor, Tensor]]] = deque()
        for positions in upcoming:
            pending.append(reader.submit(self._load, positions))
            if len(pending) == self.prefetch:
                break
        nb = self.device.type == "cuda"
        while pending:
            x, lengths, labels = pending.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                pending.append(reader.submit(self._load, following))
            cpu_share.rebalance()
            yield (x.to(self.device, non_blocking=nb), lengths.to(self.device, non_blocking=nb), labels.to(self.device, non_blocking=nb))
