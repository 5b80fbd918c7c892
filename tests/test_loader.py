"""The batch loader: the order an independent computation expects for every read-ahead depth,
disjoint rank shares that make up the global batch, resume from a batch index, and one read-ahead
thread that lives across epochs until the loader is closed."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import random_skeletons
from halp_bench.datasets.loader import BatchLoader
from halp_bench.errors import ConfigError

CPU = torch.device("cpu")


def _subset():
    data = random_skeletons(n=30, t=6)
    train, _ = data.split()
    return data, train


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("halp-bench-loader")]


@pytest.mark.parametrize("prefetch", [1, 2, 5])
def test_shuffled_batches_follow_the_generator_for_any_read_ahead(prefetch):
    data, train = _subset()
    loader = BatchLoader(train, 4, CPU, shuffle=True, generator=torch.Generator().manual_seed(3), prefetch=prefetch)
    with loader:
        for epoch in range(2):  # two epochs: the generator advances between them
            expected_order = torch.randperm(len(train), generator=_advanced(3, epoch, len(train))).numpy()
            got = list(loader)
            assert [len(b[0]) for b in got] == [4] * 5
            rows = train.indices[expected_order]
            np.testing.assert_array_equal(torch.cat([b[0] for b in got]).numpy(), data.data[rows])
            np.testing.assert_array_equal(torch.cat([b[2] for b in got]).numpy(), data.labels[rows])


def _advanced(seed: int, epochs: int, n: int) -> torch.Generator:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        torch.randperm(n, generator=generator)
    return generator


def test_resume_from_a_batch_and_rank_shares_make_up_the_global_batch():
    _, train = _subset()
    whole = BatchLoader(train, 4, CPU, drop_last=True)
    full = [b[2] for b in whole]
    assert [torch.equal(a, b) for a, b in zip([b[2] for b in whole.batches(2)], full[2:])] == [True] * 3
    shares = [list(BatchLoader(train, 4, CPU, drop_last=True, rank=r, world_size=2)) for r in range(2)]
    for step, labels in enumerate(full):
        torch.testing.assert_close(torch.cat([shares[0][step][2], shares[1][step][2]]), labels)


def test_one_reader_thread_serves_every_epoch_and_ends_with_close():
    _, train = _subset()
    before = set(_reader_threads())  # other tests' loaders may still be ending: only new threads count
    loader = BatchLoader(train, 4, CPU, shuffle=True, generator=torch.Generator().manual_seed(0))
    list(loader)
    reader = loader._pool
    (thread,) = set(_reader_threads()) - before
    list(loader)
    assert loader._pool is reader and set(_reader_threads()) - before == {thread}
    loader.close()
    assert not thread.is_alive()
    with pytest.raises(ConfigError, match="prefetch=0"):
        BatchLoader(train, 4, CPU, prefetch=0)
