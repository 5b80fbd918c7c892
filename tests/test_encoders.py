"""The BiGRU encoders against the official per-frame code and torch's own bidirectional GRU."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from halp_bench.encoders import BiGRU, BiGRUSettings, OfficialBiGRU, build_encoder, flatten_frames
from halp_bench.errors import CheckpointError, ConfigError, UnknownNameError
from halp_bench.skeleton import DataSpec, chain_layout

ENCODER_NAMES = ["bigru", "bigru_official"]


class _EncoderRNN(nn.Module):
    def __init__(self, in_size: int, hidden: int, layers: int):
        super().__init__()
        self.gru = nn.GRU(in_size, hidden, num_layers=layers, bidirectional=True, batch_first=True)


class OfficialBIGRU(nn.Module):
    """The official CMD `BIGRU` (moco/GRU.py) with its MLP head: same state_dict keys, same loop."""

    def __init__(self, in_size: int, hidden: int, layers: int, proj_hidden: int, proj_dim: int):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(in_size)
        self.encoder = _EncoderRNN(in_size, hidden, layers)
        self.fc = nn.Sequential(nn.Linear(2 * hidden, proj_hidden), nn.ReLU(), nn.Linear(proj_hidden, proj_dim))

    def normed_frames(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        seq = x.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)
        return self.input_norm(seq.permute(0, 2, 1).contiguous()).permute(0, 2, 1).contiguous()

    def features(self, x: Tensor) -> Tensor:
        seq = self.normed_frames(x)
        hidden = None
        for it in range(seq.shape[1]):  # the official loop: one frame per call, h carried
            out, hidden = self.encoder.gru(seq[:, it : it + 1], hidden)
        return out[:, 0]


def _cfg(name: str, hidden: int = 8, layers: int = 2) -> BiGRUSettings:
    return BiGRUSettings(name=name, hidden_size=hidden, num_layers=layers)


def _data(in_channels: int, persons: int = 2) -> DataSpec:
    """Data of 3 coordinates, `persons` bodies and in_channels / (3 * persons) joints."""
    joints = in_channels // (3 * persons)
    return DataSpec(channels=3, frames=11, joints=joints, persons=persons, layout=chain_layout(joints))


def _pair(name: str, layers: int, in_size: int = 30, hidden: int = 8):
    """An encoder and an official model carrying the same (official) weights."""
    ref = OfficialBIGRU(in_size, hidden, layers, 12, 6)
    with torch.no_grad():  # non-trivial BN statistics so that eval mode tests the import too
        ref.input_norm.running_mean.uniform_(-1, 1)
        ref.input_norm.running_var.uniform_(0.5, 2)
        ref.input_norm.weight.uniform_(0.5, 1.5)
        ref.input_norm.bias.uniform_(-0.5, 0.5)
    enc = build_encoder(_data(in_size), _cfg(name, hidden, layers))
    assert enc.load_official_state_dict(ref.state_dict()) == ["fc.0.bias", "fc.0.weight", "fc.2.bias", "fc.2.weight"]  # the head is the method's
    return enc, ref


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("train", [True, False])
def test_official_equals_per_frame_loop(layers: int, train: bool) -> None:
    torch.manual_seed(layers)
    enc, ref = _pair("bigru_official", layers)
    enc.train(train)
    ref.train(train)
    x = torch.randn(5, 3, 11, 5, 2)
    feats, expected = enc(x), ref.features(x)
    assert feats.shape == (5, 16)
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layers", [1, 2])
def test_bigru_is_torch_bidirectional_gru(layers: int) -> None:
    torch.manual_seed(10 + layers)
    enc, ref = _pair("bigru", layers)
    official, _ = _pair("bigru_official", layers)
    official.load_official_state_dict(ref.state_dict())
    x = torch.randn(5, 3, 11, 5, 2)
    out, h_n = ref.encoder.gru(ref.normed_frames(x))
    feats = enc(x)
    torch.testing.assert_close(feats, torch.cat([h_n[-2], h_n[-1]], dim=1), atol=1e-5, rtol=0)
    # forward half = last frame's output, backward half = first frame's output (it read T-1 .. 0)
    torch.testing.assert_close(feats, torch.cat([out[:, -1, :8], out[:, 0, 8:]], dim=1), atol=1e-5, rtol=0)
    assert torch.allclose(feats[:, :8], official(x)[:, :8], atol=1e-5) == (layers == 1)
    assert (feats[:, 8:] - official(x)[:, 8:]).abs().max() > 1e-3


def test_flatten_frames_order_is_joint_coordinate_person() -> None:
    torch.manual_seed(0)
    n, c, t, v, m = 2, 3, 4, 5, 2
    x = torch.randn(n, c, t, v, m)
    expected = torch.empty(n, t, v * c * m)
    for i in range(n):
        for ci in range(c):
            for ti in range(t):
                for vi in range(v):
                    for mi in range(m):
                        expected[i, ti, vi * c * m + ci * m + mi] = x[i, ci, ti, vi, mi]
    assert torch.equal(flatten_frames(x, c * v * m), expected)


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_wrong_input_shape_is_a_config_error(name: str) -> None:
    enc = build_encoder(_data(150), _cfg(name))
    with pytest.raises(ConfigError, match="150 channels"):
        enc(torch.randn(2, 3, 8, 20, 1))
    with pytest.raises(ConfigError, match=r"\(N, C, T, V, M\)"):
        enc(torch.randn(2, 8, 150))


@pytest.mark.parametrize("name", ENCODER_NAMES)
@pytest.mark.parametrize("v, m, layers", [(20, 1, 1), (25, 2, 2), (7, 3, 3)])
def test_shapes(name: str, v: int, m: int, layers: int) -> None:
    torch.manual_seed(1)
    enc = build_encoder(_data(3 * v * m, m), _cfg(name, hidden=8, layers=layers))
    assert enc.feature_dim == 16
    assert enc(torch.randn(4, 3, 9, v, m)).shape == (4, 16)


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(2)
    enc = build_encoder(_data(30), _cfg(name, layers=3))
    z = enc(torch.randn(4, 3, 6, 5, 2))
    (z * torch.randn_like(z)).sum().backward()
    for key, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, key


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_xavier_on_gru_weights_defaults_elsewhere(name: str) -> None:
    """Xavier's bound is >= 9% above the GRU default 1/sqrt(H) for every weight here (its variance >= 20%)."""
    torch.manual_seed(3)
    hidden = 64
    enc = build_encoder(_data(60), BiGRUSettings(name=name, hidden_size=hidden, num_layers=2))
    grus = [mod for mod in enc.modules() if isinstance(mod, nn.GRU)]
    assert grus
    default = 1 / math.sqrt(hidden)
    for gru in grus:
        for key, p in gru.named_parameters():
            if p.dim() == 2:
                fan_out, fan_in = p.shape
                bound = math.sqrt(6 / (fan_in + fan_out))
                assert bound > 1.09 * default
                assert p.abs().max() <= bound and p.abs().max() > 0.97 * bound, key
                assert abs(p.var().item() / (bound**2 / 3) - 1) < 0.05, key
            else:  # biases keep nn.GRU's U(-1/sqrt(H), 1/sqrt(H))
                assert p.abs().max() <= default and p.abs().max() > 0.8 * default, key


def test_official_checkpoint_import() -> None:
    torch.manual_seed(4)
    ref = OfficialBIGRU(30, 8, 2, 12, 6)
    checkpoint = {f"module.encoder_q.{k}": v for k, v in ref.state_dict().items()}
    checkpoint["module.queue"] = torch.zeros(6, 10)
    enc = build_encoder(_data(30), _cfg("bigru_official"))
    head = [f"module.encoder_q.fc.{i}.{t}" for i in (0, 2) for t in ("bias", "weight")]
    assert enc.load_official_state_dict(checkpoint, prefix="module.encoder_q.") == sorted(head)  # the head is the method's
    for official_key, own_key in enc.official_key_map().items():
        assert torch.equal(enc.state_dict()[own_key], ref.state_dict()[official_key])

    # a downstream checkpoint: no MLP head, a classifier `fc` instead
    downstream = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    downstream["fc.weight"], downstream["fc.bias"] = torch.zeros(60, 16), torch.zeros(60)
    fresh = build_encoder(_data(30), _cfg("bigru"))
    assert fresh.load_official_state_dict(downstream) == ["fc.bias", "fc.weight"]

    with pytest.raises(CheckpointError, match="unexpected encoder.gru.weight_ih_l2"):
        build_encoder(_data(30), _cfg("bigru_official", layers=2)).load_official_state_dict(OfficialBIGRU(30, 8, 3, 12, 6).state_dict())
    with pytest.raises(CheckpointError, match="missing encoder.gru.weight_ih_l1"):
        build_encoder(_data(30), _cfg("bigru", layers=2)).load_official_state_dict(OfficialBIGRU(30, 8, 1, 12, 6).state_dict())
    with pytest.raises(CheckpointError, match="encoder.gru.weight_ih_l0 has shape"):
        build_encoder(_data(30), _cfg("bigru", hidden=4)).load_official_state_dict(ref.state_dict())


def test_both_flavours_register_and_unknown_names_list_them() -> None:
    assert isinstance(build_encoder(_data(30), _cfg("bigru")), BiGRU)
    assert isinstance(build_encoder(_data(30), _cfg("bigru_official")), OfficialBiGRU)
    with pytest.raises(UnknownNameError, match="bigru, bigru_official"):
        build_encoder(_data(30), _cfg("no_such_encoder"))
