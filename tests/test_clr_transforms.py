"""The ST-GCN family's normal views against a per-sample numpy loop written from the description in
field_methods.md §2.4 (mirrored padding with the edge frame, start in {0..2*pad}, p' = S p)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halp_bench.datasets.views.clr import NormalAugmentSettings, mirrored_crop, normal_view, relative_to_joint


def _crop_loop(sample: np.ndarray, ratio: int, start: int) -> np.ndarray:
    """One (C, T, V, M) sample: pad T//ratio reversed edge frames per side, keep T frames from `start`."""
    t = sample.shape[1]
    pad = t // ratio
    padded = np.concatenate([sample[:, :pad][:, ::-1], sample, sample[:, -pad:][:, ::-1]], axis=1)
    return padded[:, start : start + t]


def _shear_loop(sample: np.ndarray, off_diagonal: np.ndarray) -> np.ndarray:
    """p' = S p for every joint, S = identity with the 6 given off-diagonal entries (row-major)."""
    s = np.eye(3)
    s[~np.eye(3, dtype=bool)] = off_diagonal
    return np.einsum("ij,jtvm->itvm", s, sample)


def _resize_loop(sample: np.ndarray, length: int, frames: int) -> np.ndarray:
    """Linear resize of the first `length` frames with half-pixel centres (cv2.INTER_LINEAR's rule)."""
    out = np.empty(sample.shape[:1] + (frames,) + sample.shape[2:])
    for i in range(frames):
        src = max((i + 0.5) * length / frames - 0.5, 0.0)
        low = min(int(np.floor(src)), length - 1)
        high = min(low + 1, length - 1)
        w = src - np.floor(src)
        out[:, i] = sample[:, low] * (1 - w) + sample[:, high] * w
    return out


def test_mirrored_crop_matches_the_per_sample_loop_and_covers_every_start():
    x = torch.randn(64, 3, 20, 4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = mirrored_crop(x, 6, torch.Generator().manual_seed(1))
    starts = torch.randint(0, 2 * 3 + 1, (64,), generator=torch.Generator().manual_seed(1))
    assert set(starts.tolist()) == set(range(7))  # pad = 20 // 6 = 3: starts 0..6, both ends reached
    for b in range(64):
        np.testing.assert_allclose(out[b].numpy(), _crop_loop(x[b].numpy(), 6, int(starts[b])))


def test_the_crop_window_keeps_the_edge_frame_mirrored():
    x = torch.arange(12, dtype=torch.float32).view(1, 1, 12, 1, 1)  # frame index as value, pad = 2
    seen = {tuple(mirrored_crop(x, 6, torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(60)}
    assert (1, 0, *range(10)) in seen and (*range(2, 12), 11, 10) in seen
    assert all(len(w) == 12 for w in seen) and len(seen) == 5


def test_normal_view_matches_resize_crop_shear_loop():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, 30, 25, 2, generator=g, dtype=torch.float64)
    lengths = torch.tensor([30, 17, 9, 24, 1])
    settings = NormalAugmentSettings(shear_amplitude=0.5, temporal_padding_ratio=6)
    out = normal_view(x, lengths, 12, settings, torch.Generator().manual_seed(3))
    replay = torch.Generator().manual_seed(3)  # the draws, in the documented order: starts, then shears
    starts = torch.randint(0, 2 * 2 + 1, (5,), generator=replay)
    off = (-0.5 + torch.rand(5, 3, 3, generator=replay)).double()[:, ~torch.eye(3, dtype=torch.bool)]  # drawn in float32
    assert out.shape == (5, 3, 12, 25, 2)
    for b in range(5):
        ref = _resize_loop(x[b].numpy(), int(lengths[b]), 12)
        ref = _shear_loop(_crop_loop(ref, 6, int(starts[b])), off[b].numpy())
        np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-12)
    assert off.abs().max() <= 0.5


@pytest.mark.parametrize("amplitude, ratio", [(0.0, -1), (-1.0, 0)])
def test_values_at_or_below_zero_turn_the_augmentations_off(amplitude, ratio):
    x, lengths = torch.randn(3, 3, 20, 25, 2, dtype=torch.float64), torch.tensor([20, 10, 15])
    out = normal_view(x, lengths, 10, NormalAugmentSettings(shear_amplitude=amplitude, temporal_padding_ratio=ratio), torch.Generator())
    for b in range(3):
        np.testing.assert_allclose(out[b].numpy(), _resize_loop(x[b].numpy(), int(lengths[b]), 10), atol=1e-12)


def test_normal_view_is_seeded():
    x, lengths = torch.randn(4, 3, 20, 25, 2), torch.tensor([20, 10, 15, 5])
    view = lambda seed: normal_view(x, lengths, 16, NormalAugmentSettings(), torch.Generator().manual_seed(seed))
    assert torch.equal(view(0), view(0)) and not torch.equal(view(0), view(1))


def test_relative_views_are_the_views_of_data_centred_frame_by_frame():
    """Their preprocessing subtracts the centre joint per frame before any augmentation; the view
    made relative here is the view of data centred by a plain loop first."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 3, 10, 25, 2, generator=g, dtype=torch.float64)
    centred = x.clone()
    for b in range(3):
        for t in range(10):
            for m in range(2):
                centred[b, :, t, :, m] = x[b, :, t, :, m] - x[b, :, t, 20, m].unsqueeze(-1)
    assert torch.equal(relative_to_joint(x, 20), centred) and not centred[:, :, :, 20].any()
    settings, lengths = NormalAugmentSettings(), torch.tensor([10, 7, 4])
    made = normal_view(x, lengths, 8, settings, torch.Generator().manual_seed(5), center_joint=20)
    assert torch.allclose(made, normal_view(centred, lengths, 8, settings, torch.Generator().manual_seed(5)), atol=1e-12)
    off = NormalAugmentSettings(relative=False)
    assert torch.equal(
        normal_view(x, lengths, 8, off, torch.Generator().manual_seed(5), center_joint=20), normal_view(x, lengths, 8, off, torch.Generator().manual_seed(5))
    )
