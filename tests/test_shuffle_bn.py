"""Shuffle BN in one process: per-group BatchNorm statistics checked against an independent
normalisation, keys returned in the batch's order, draws tied to the batch, and its refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import NTU_SPEC, tiny_config
from halp_bench.errors import ConfigError
from halp_bench.methods.base import Batch, create_method
from halp_bench.methods.shuffle_bn import grouped, shuffled


def normalised(x: torch.Tensor) -> torch.Tensor:
    """BatchNorm's training-mode output without affine, written out: per feature over the samples."""
    return (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + 1e-5)


def test_grouped_normalises_each_group_alone():
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    bn = nn.BatchNorm1d(5, affine=False)
    expected = torch.cat([normalised(part) for part in x.split(4)])
    assert torch.allclose(grouped(bn, x, 3), expected, atol=1e-5)
    assert not torch.allclose(grouped(bn, x, 1), expected, atol=1e-3)  # one group: the whole batch's statistics


def test_shuffled_normalises_other_samples_together_and_keeps_the_order():
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    bn = nn.BatchNorm1d(4, affine=False)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(7))
    expected = torch.empty_like(x)
    for group in order.split(4):  # the samples drawn into one group, normalised together, back in place
        expected[group] = normalised(x[group])
    assert torch.allclose(shuffled(bn, x, 4, torch.Generator().manual_seed(7)), expected, atol=1e-5)
    per_sample = nn.Linear(4, 3)
    assert torch.allclose(shuffled(per_sample, x, 4, torch.Generator().manual_seed(3)), per_sample(x), atol=1e-6)


def _batch(method, step: int) -> Batch:
    x, lengths = torch.randn(8, 3, 12, 25, 2, generator=torch.Generator().manual_seed(0)), torch.full((8,), 12)
    return Batch(method.make_views(x, lengths, torch.Generator().manual_seed(0)), epoch=0, iteration=step, step=step)


def test_skeletonclr_keys_depend_on_the_groups_and_repeat_for_the_same_step():
    torch.manual_seed(0)
    method = create_method("skeletonclr", tiny_config("skeletonclr", "method.shuffle_bn_groups=2", "encoder.dropout=0", encoder="stgcn"), NTU_SPEC)
    batch = _batch(method, step=3)
    _, k = method.embed(*batch.views, batch)
    _, again = method.embed(*batch.views, batch)
    assert torch.equal(k["joint"], again["joint"])  # drawn from the batch: a resumed run draws the same
    _, other_step = method.embed(*batch.views, _batch(method, step=4))
    with pytest.raises(ConfigError, match="needs the batch"):
        method.embed(*batch.views)
    losses = method.training_step(batch)
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"])
    method.settings.shuffle_bn_groups = 1
    _, whole = method.embed(*batch.views)  # one BatchNorm batch
    assert not torch.allclose(k["joint"], other_step["joint"]) and not torch.allclose(k["joint"], whole["joint"])


def test_aimclr_trains_a_step_with_shuffle_bn():
    torch.manual_seed(0)
    method = create_method("aimclr", tiny_config("aimclr", "method.shuffle_bn_groups=2"), NTU_SPEC)
    method.training_step(_batch(method, step=0))["loss"].backward()


@pytest.mark.parametrize(
    ("overrides", "encoder", "message"),
    [
        (["method.shuffle_bn_groups=2"], "transformer", "has no BatchNorm"),
        (["method.shuffle_bn_groups=2", "sync_batchnorm=true"], "stgcn", "sync_batchnorm"),
        (["method.shuffle_bn_groups=5", "pretrain.batch_size=8"], "stgcn", "at most 4 groups"),
    ],
)
def test_refusals(overrides, encoder, message):
    with pytest.raises(ConfigError, match=message):
        create_method("skeletonclr", tiny_config("skeletonclr", *overrides, encoder=encoder), NTU_SPEC)
