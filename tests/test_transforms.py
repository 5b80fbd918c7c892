"""Augmentations: shapes, seeded determinism, crop bounds, and the exact interpolation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from halp_bench.config import AugmentSettings
from halp_bench.datasets.views.cmd import center_crop_resize, joint_corruption, pretrain_view, random_crop_resize, resize_segments, shear


def _ramp(b: int = 4, t: int = 40) -> torch.Tensor:
    """x[b, c, t, v, m] = t: frame indices survive resizing as interpolated positions."""
    return torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1).expand(b, 3, t, 25, 2).clone()


def test_resize_matches_torch_interpolate_on_each_segment():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 30, 5, 2, generator=g)
    starts, lengths = torch.tensor([0, 4, 10]), torch.tensor([30, 7, 20])
    out = resize_segments(x, starts, lengths, 16)
    for i in range(3):
        seg = x[i, :, starts[i] : starts[i] + lengths[i]]
        ref = F.interpolate(seg.permute(0, 2, 3, 1).reshape(1, -1, int(lengths[i]), 1), size=(16, 1), mode="bilinear", align_corners=False)
        assert torch.allclose(out[i], ref.reshape(3, 5, 2, 16).permute(0, 3, 1, 2), atol=1e-5)


def test_random_crop_stays_inside_the_valid_frames_and_respects_min_length():
    x = _ramp(t=100)
    lengths = torch.tensor([100, 60, 20, 5])
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        out = random_crop_resize(x, lengths, 16, (0.1, 1.0), 16, g)
        first, last = out[:, 0, 0, 0, 0], out[:, 0, -1, 0, 0]
        assert (first >= 0).all() and (last <= (lengths - 1).float()).all()
        span = last - first
        # crop length >= min(16, length): the resized positions span at least (crop-1)*(1-1/16) frames
        assert (span >= (torch.clamp(lengths, max=16) - 1).float() * (15 / 16) - 1e-4).all()


def test_center_crop_is_centred_and_deterministic():
    x = _ramp(b=1, t=100)
    out = center_crop_resize(x, torch.tensor([100]), 10, 0.95)
    assert torch.equal(out, center_crop_resize(x, torch.tensor([100]), 10, 0.95))
    start = int(0.05 * 100 / 2)
    assert out[0, 0, 0, 0, 0] >= start and out[0, 0, -1, 0, 0] <= 100 - start - 1
    assert torch.isclose(out[0, 0, :, 0, 0].mean(), torch.tensor(49.5), atol=0.6)


def test_pretrain_view_is_seeded_and_shaped():
    x, lengths = torch.randn(6, 3, 40, 25, 2), torch.tensor([40, 30, 20, 40, 12, 40])
    cfg = AugmentSettings(min_crop_frames=16)
    a = pretrain_view(x, lengths, 16, cfg, torch.Generator().manual_seed(3))
    b = pretrain_view(x, lengths, 16, cfg, torch.Generator().manual_seed(3))
    c = pretrain_view(x, lengths, 16, cfg, torch.Generator().manual_seed(4))
    assert a.shape == (6, 3, 16, 25, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_shear_keeps_the_diagonal_and_bounds_off_diagonals():
    x = torch.zeros(2, 3, 1, 3, 1)
    for c in range(3):
        x[:, c, 0, c, 0] = 1.0  # joint c holds basis vector e_c, so the output shows S's columns
    out = shear(x, 1.0, torch.Generator().manual_seed(0))[:, :, 0, :, 0]  # (B, 3, 3) = S
    assert torch.allclose(torch.diagonal(out, dim1=1, dim2=2), torch.ones(2, 3))
    assert out.abs().max() <= 1.0


def test_joint_corruption_touches_exactly_the_chosen_joints():
    x = torch.randn(8, 3, 5, 25, 2) + 10
    out = joint_corruption(x, 15, 1.0, 1.0, torch.Generator().manual_seed(0))  # always zero
    zeroed = (out == 0).all(dim=(1, 2, 4))  # (B, V)
    assert (zeroed.sum(dim=1) == 15).all()
    assert torch.equal(out[~zeroed.view(8, 1, 1, 25, 1).expand_as(out)], x[~zeroed.view(8, 1, 1, 25, 1).expand_as(x)])
