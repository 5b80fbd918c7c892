"""The `stgcn` encoder against the official ST-GCN's documented structure (papers/field_methods.md §3):
its size, strides, key names, graph convolution (against a loop), person handling and initialisation,
and that methods train with it."""

from __future__ import annotations

import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config
from halp_bench.encoders import STGCN, STGCNSettings, build_encoder
from halp_bench.encoders.stgcn import GraphConv
from halp_bench.errors import ConfigError
from halp_bench.methods.base import Batch, create_method
from halp_bench.skeleton import KINECT_V1_20, NTU25, DataSpec, chain_layout

PAPER = STGCNSettings()  # h16/256, dropout 0.5, edge importance


def _ntu(frames: int = 50, persons: int = 2) -> DataSpec:
    return DataSpec(channels=3, frames=frames, joints=25, persons=persons, layout=NTU25)


def official_keys(h: int = 16, feature: int = 256) -> set[str]:
    """The official encoder's state_dict keys without `fc`, written out from the digest's table (§7.1)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"A", *(f"data_bn.{t}" for t in bn), *(f"edge_importance.{i}" for i in range(10))}
    for i in range(10):
        keys |= {f"st_gcn_networks.{i}.gcn.conv.{t}" for t in ("weight", "bias")}
        keys |= {f"st_gcn_networks.{i}.tcn.{m}.{t}" for m in (0, 3) for t in bn}
        keys |= {f"st_gcn_networks.{i}.tcn.2.{t}" for t in ("weight", "bias")}
    for i in (4, 7, 9):  # the blocks that change width or stride
        keys |= {f"st_gcn_networks.{i}.residual.0.{t}" for t in ("weight", "bias")}
        keys |= {f"st_gcn_networks.{i}.residual.1.{t}" for t in bn}
    return keys


def test_paper_size_keys_and_describe():
    torch.manual_seed(0)
    enc = build_encoder(_ntu(), PAPER)
    assert isinstance(enc, STGCN) and enc.feature_dim == 256 and PAPER.describe() == "stgcn h16/256"
    assert sum(p.numel() for p in enc.parameters()) == 821_380  # the digest's count for the backbone without fc (§3.3)
    assert set(enc.state_dict()) == official_keys()
    assert enc.state_dict()["st_gcn_networks.9.gcn.conv.weight"].shape == (3 * 256, 64, 1, 1)
    without = build_encoder(_ntu(), STGCNSettings(edge_importance=False))
    assert set(without.state_dict()) == official_keys() - {f"edge_importance.{i}" for i in range(10)}


def test_time_goes_50_25_13_and_the_feature_is_pooled():
    torch.manual_seed(0)
    enc = build_encoder(_ntu(), PAPER).eval()
    lengths = []
    for block in enc.st_gcn_networks:
        block.register_forward_hook(lambda module, args, out: lengths.append(out.shape[2]))
    x = torch.randn(3, 3, 50, 25, 2)
    with torch.no_grad():
        fmap = enc.feature_map(x)
        assert fmap.shape == (6, 256, 13, 25)
        assert lengths == [50] * 4 + [25] * 3 + [13] * 3
        torch.testing.assert_close(enc(x), fmap.mean(dim=(2, 3)).view(3, 2, 256).mean(dim=1))


def test_graph_convolution_equals_a_loop():
    torch.manual_seed(0)
    n, c_in, c_out, k, t, v = 2, 3, 2, 3, 2, 4
    conv = GraphConv(c_in, c_out, k)
    torch.nn.init.normal_(conv.conv.bias)
    x, a = torch.randn(n, c_in, t, v), torch.randn(k, v, v)
    w, b = conv.conv.weight[:, :, 0, 0].tolist(), conv.conv.bias.tolist()
    expected = torch.zeros(n, c_out, t, v)
    for ni in range(n):
        for c in range(c_out):
            for ti in range(t):
                for wi in range(v):
                    total = 0.0
                    for ki in range(k):
                        for vi in range(v):
                            row = ki * c_out + c  # the official view (n, K, out, t, v) of the conv's K*out channels
                            pre = b[row] + sum(w[row][i] * x[ni, i, ti, vi].item() for i in range(c_in))
                            total += pre * a[ki, vi, wi].item()
                    expected[ni, c, ti, wi] = total
    with torch.no_grad():
        torch.testing.assert_close(conv(x, a), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "layout, persons, channels", [(KINECT_V1_20, 1, 3), (NTU25, 2, 3), (chain_layout(6), 2, 2)], ids=["kinect20-1p", "ntu25-2p", "chain6-2p-2d"]
)
def test_any_layout_persons_and_channels(layout, persons, channels):
    torch.manual_seed(0)
    spec = DataSpec(channels=channels, frames=12, joints=layout.num_joints, persons=persons, layout=layout)
    enc = build_encoder(spec, STGCNSettings(hidden_channels=4, hidden_dim=8))
    x = torch.randn(3, channels, 12, layout.num_joints, persons)
    out = enc(x)
    assert out.shape == (3, 8) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    with pytest.raises(ConfigError, match="C\\*V"):
        enc(torch.randn(3, channels + 1, 12, layout.num_joints, persons))


def test_eval_mode_is_deterministic_and_training_mode_drops_out():
    torch.manual_seed(0)
    enc = build_encoder(_ntu(16), PAPER)
    x = torch.randn(4, 3, 16, 25, 2)
    with torch.no_grad():
        assert not torch.equal(enc.train()(x), enc(x))  # dropout 0.5 is active in pretraining
        assert torch.equal(enc.eval()(x), enc(x))


def test_an_absent_person_is_averaged_in_as_the_official_code_does():
    torch.manual_seed(0)
    enc = build_encoder(_ntu(16), STGCNSettings(hidden_channels=4, hidden_dim=8)).eval()
    with torch.no_grad():
        enc.data_bn.running_mean.uniform_(-1, 1)  # so an all-zero person gives a non-zero feature
        one = torch.randn(4, 3, 16, 25, 1)
        two = torch.cat([one, torch.zeros_like(one)], dim=-1)
        alone, absent = enc(one), enc(torch.zeros_like(one))
        torch.testing.assert_close(enc(two), (alone + absent) / 2)  # not masked: the zero person counts
        assert not torch.allclose(enc(two), alone)


def test_official_initialisation():
    torch.manual_seed(0)
    enc = build_encoder(_ntu(), PAPER)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.001 and all(not m.bias.any() for m in convs)
    norms = [m for m in enc.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    scales = torch.cat([m.weight.flatten() for m in norms])
    assert abs(scales.mean().item() - 1) < 0.005 and 0.01 < scales.std().item() < 0.03
    assert all(not m.bias.any() for m in norms)
    assert all(torch.equal(p, torch.ones(3, 25, 25)) for p in enc.edge_importance)


def test_encoders_without_a_feature_map_say_so():
    bigru = build_encoder(NTU_SPEC, tiny_config("moco").encoder)
    with pytest.raises(ConfigError, match="no joint feature map.*such as stgcn"):
        bigru.feature_map(torch.zeros(1, 3, 8, 25, 2))
    with pytest.raises(ConfigError, match="no joint feature map"):
        bigru.pool(torch.zeros(2, 4, 2, 25), 2)


@pytest.mark.parametrize("name", ["moco", "halp"])
def test_methods_train_with_stgcn(name, one_thread):
    cfg = tiny_config(name, encoder="stgcn")
    assert cfg.encoder.name == "stgcn" and cfg.encoder.describe() == "stgcn h4/64"  # the cpu preset
    torch.manual_seed(0)
    method = create_method(name, cfg, NTU_SPEC)
    assert isinstance(method.encoder_for_eval(), STGCN)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01)
    data = random_skeletons(n=32, t=16)
    x, lengths = torch.from_numpy(data.data), torch.from_numpy(data.lengths)
    g = torch.Generator().manual_seed(0)
    for i in range(4):
        batch = Batch(method.make_views(x[i * 8 : (i + 1) * 8], lengths[i * 8 : (i + 1) * 8], g), epoch=0, iteration=i, step=i, total_steps=4)
        losses = method.training_step(batch)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    assert all(torch.isfinite(p).all() for p in method.encoder_for_eval().parameters())
