"""Every registered encoder (plugins included), at its `cpu` preset size, on two skeleton layouts:
the feature it declares, gradients to every parameter, the meta-device size probe the methods use
to build their heads, and a seeded MoCo step through it. New encoders are tested here for free."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import random_skeletons, tiny_config
from halp_bench.encoders import build_encoder, encoder_feature_dim
from halp_bench.methods.base import Batch, create_method
from halp_bench.registry import ENCODERS, load_plugins
from halp_bench.skeleton import KINECT_V1_20, NTU25, DataSpec

load_plugins()
SPECS = {
    "ntu25x2": DataSpec(channels=3, frames=8, joints=25, persons=2, layout=NTU25),
    "kinect20x1": DataSpec(channels=3, frames=8, joints=20, persons=1, layout=KINECT_V1_20),
}


def _settings(name: str):
    return dataclasses.replace(ENCODERS.get(name).settings_class.for_preset("cpu"), name=name)


@pytest.mark.parametrize("layout", list(SPECS))
@pytest.mark.parametrize("name", ENCODERS.names())
def test_features_gradients_and_declared_size(name, layout):
    data = SPECS[layout]
    torch.manual_seed(0)
    encoder = build_encoder(data, _settings(name))
    x = torch.randn(4, data.channels, data.frames, data.joints, data.persons)
    feats = encoder(x)
    assert feats.shape == (4, encoder.feature_dim) and torch.isfinite(feats).all()
    assert encoder_feature_dim(data, _settings(name)) == encoder.feature_dim
    (feats * torch.randn_like(feats)).sum().backward()
    for key, p in encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, key
    assert isinstance(_settings(name).describe(), str) and _settings(name).describe().startswith(name)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_a_method_trains_through_every_encoder(name):
    cfg = tiny_config("moco", encoder=name)
    cfg.encoder = _settings(name)  # the encoder at its cpu preset size
    data = random_skeletons(n=16, t=12)
    torch.manual_seed(0)
    method = create_method("moco", cfg, SPECS["ntu25x2"])
    x, lengths = torch.from_numpy(data.data), torch.from_numpy(data.lengths)
    losses = method.training_step(Batch(method.make_views(x, lengths, torch.Generator().manual_seed(0)), epoch=0, iteration=0))
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"])
    assert all(p.grad is not None for p in method.encoder_for_eval().parameters())
