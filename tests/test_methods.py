"""Every registered method: seeded steps give finite losses, gradients reach the query encoder,
state round-trips through a checkpoint. New plugins are tested here for free."""

from __future__ import annotations

import io

import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config
from halp_bench.methods.base import Batch, create_method
from halp_bench.registry import METHODS, load_plugins

load_plugins()
TRAINABLE = [name for name in METHODS.names() if METHODS.get(name).pretrains]


def _batches(method, n_steps: int, batch: int = 8):
    """Batches of the method's own views (`make_views`), as the engine makes them."""
    data = random_skeletons(n=batch * n_steps, t=16)
    g = torch.Generator().manual_seed(0)
    x, lengths = torch.from_numpy(data.data), torch.from_numpy(data.lengths)
    for i in range(n_steps):
        sl = slice(i * batch, (i + 1) * batch)
        yield Batch(method.make_views(x[sl], lengths[sl], g), epoch=0, iteration=i, step=i, total_steps=n_steps)


def _build(name):
    torch.manual_seed(0)
    return create_method(name, tiny_config(name), NTU_SPEC)


@pytest.mark.parametrize("name", TRAINABLE)
def test_steps_are_finite_reach_the_encoder_and_round_trip(name):
    method = _build(name)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01)
    steps = list(_batches(method, 6))  # 6 x 8 keys > prototype_queue (32): HaLP's term is active by the end
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
    clone = _build(name)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    for (key, a), b in zip(method.state_dict().items(), clone.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), key
    # restored state continues identically (queues, prototypes, generators included)
    more = list(_batches(method, 7))[-1]
    torch.manual_seed(1)
    out_a = method.training_step(more)
    torch.manual_seed(1)
    out_b = clone.training_step(more)
    for key in out_a:
        assert torch.allclose(out_a[key], out_b[key], atol=1e-6), key


def test_the_random_method_does_not_pretrain():
    assert not METHODS.get("random").pretrains
    assert _build("random").encoder_for_eval().feature_dim == 32
