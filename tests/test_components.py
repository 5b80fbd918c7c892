"""The contrastive building blocks against slow, explicit reference computations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from halp_bench.methods.components import KeyQueue, ema_update, info_nce


def test_info_nce_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(11, 8, generator=g), dim=1)
    t = 0.07
    total = 0.0
    for i in range(5):
        pos = math.exp(float(q[i] @ k[i]) / t)
        neg = sum(math.exp(float(q[i] @ queue[j]) / t) for j in range(11))
        total += -math.log(pos / (pos + neg))
    assert math.isclose(info_nce(q, k, queue, t).item(), total / 5, rel_tol=1e-5)


def test_queue_is_fifo_and_wraps_with_a_shared_pointer():
    queue = KeyQueue(size=5, dim=2, banks=2)
    first = [torch.full((3, 2), 1.0), torch.full((3, 2), -1.0)]
    queue.push(*first)
    assert queue.ptr.item() == 3 and queue.filled.item() == 3
    second = [torch.arange(8.0).view(4, 2), -torch.arange(8.0).view(4, 2)]
    queue.push(*second)  # slots 3, 4, 0, 1
    assert queue.ptr.item() == 2
    assert torch.equal(queue.keys[0, [3, 4, 0, 1]], second[0])
    assert torch.equal(queue.keys[0, 2], torch.ones(2))  # the oldest survivor
    assert torch.equal(queue.keys[1], -queue.keys[0])  # slot i holds the same sample in every bank
    assert torch.equal(queue.recent(4), second[0])  # oldest first


def test_queue_read_is_a_snapshot_taken_before_the_push():
    queue = KeyQueue(size=4, dim=2)
    before = queue.read()
    queue.push(torch.ones(2, 2))
    assert not torch.equal(before, queue.read())
    assert torch.equal(before[2:], queue.read()[2:])


def test_ema_update_formula():
    torch.manual_seed(0)
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    expected = [0.9 * t.detach() + 0.1 * s.detach() for t, s in zip(target.parameters(), source.parameters())]
    ema_update(target, source, 0.9)
    for got, want in zip(target.parameters(), expected):
        assert torch.allclose(got, want)
