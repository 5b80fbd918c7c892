"""Every registered method: seeded steps give finite losses, gradients reach the query encoder,
state round-trips through a checkpoint. New plugins are tested here for free."""

from __future__ import annotations

import io

import pytest
import torch

from conftest import random_skeletons
from halp_bench.datasets.transforms import pretrain_view
from halp_bench.methods.base import Batch, DataInfo, create_method
from halp_bench.registry import METHODS, load_plugins
from halp_bench.skeleton import NTU25

load_plugins()
TRAINABLE = [name for name in METHODS.names() if METHODS.get(name).pretrains]


def _batches(cfg, n_steps: int, batch: int = 8):
    data = random_skeletons(n=batch * n_steps, t=16)
    g = torch.Generator().manual_seed(0)
    x, lengths = torch.from_numpy(data.data), torch.from_numpy(data.lengths)
    for i in range(n_steps):
        sl = slice(i * batch, (i + 1) * batch)
        yield Batch(pretrain_view(x[sl], lengths[sl], cfg.data.frames, cfg.augment, g),
                    pretrain_view(x[sl], lengths[sl], cfg.data.frames, cfg.augment, g), epoch=0, iteration=i)


def _build(name, cfg):
    torch.manual_seed(0)
    return create_method(name, cfg, DataInfo(in_channels=150, num_joints=25, layout=NTU25))


@pytest.mark.parametrize("name", TRAINABLE)
def test_steps_are_finite_reach_the_encoder_and_round_trip(name, tiny_cfg):
    method = _build(name, tiny_cfg)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01)
    steps = list(_batches(tiny_cfg, 6))  # 6 x 8 keys > prototype_queue (32): HaLP's term is active by the end
    for batch in steps:
        losses = method.training_step(batch)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        optimizer.zero_grad()
        losses["loss"].backward()
        grads = [p.grad for p in method.encoder_for_eval().parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
        optimizer.step()
    if "halp" in name:
        assert any(key.startswith("halp_") for key in losses), f"HaLP term never became active: {list(losses)}"
    if "cmd" in name:
        assert "cmd" in losses and float(losses["cmd"].detach()) > 0

    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    clone = _build(name, tiny_cfg)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    for (key, a), b in zip(method.state_dict().items(), clone.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), key
    # restored state continues identically (queues, prototypes, generators included)
    more = list(_batches(tiny_cfg, 7))[-1]
    torch.manual_seed(1)
    out_a = method.training_step(more)
    torch.manual_seed(1)
    out_b = clone.training_step(more)
    for key in out_a:
        assert torch.allclose(out_a[key], out_b[key], atol=1e-6), key


def test_the_random_method_does_not_pretrain(tiny_cfg):
    assert not METHODS.get("random").pretrains
    assert _build("random", tiny_cfg).encoder_for_eval().feature_dim == 32
