"""AimCLR's extreme augmentations against per-sample numpy loops that replay the documented draws."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from halp_bench.datasets.views.extreme import axis_mask, extreme_augment, gaussian_blur, gaussian_kernels, gaussian_noise, random_rotate, spatial_flip
from halp_bench.errors import ConfigError
from halp_bench.skeleton import NTU25, chain_layout

B, C, T, V, M = 6, 3, 20, 25, 2
SEED = 1


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, C, T, V, M, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _g() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


@pytest.mark.parametrize("official", [False, True])
def test_spatial_flip_matches_a_loop(official):
    x = _x()
    out = spatial_flip(x, NTU25, 0.5, official, _g())
    u = torch.rand(B, generator=_g()).numpy()
    xn, expected = x.numpy(), x.numpy().copy()
    for b in range(B):
        if u[b] < 0.5:
            for v in range(V):
                expected[b, :, :, v] = xn[b, :, :, NTU25.mirror[v]]
            if not official:
                expected[b, 0] = -expected[b, 0]
    assert 0 < (u < 0.5).sum() < B  # the seed exercises both branches
    np.testing.assert_allclose(out.numpy(), expected)


def test_flip_swaps_left_and_right_joints():
    x = _x()
    out = spatial_flip(x, NTU25, 1.0, official=False, generator=_g())
    left_hand, right_hand = 7, 11  # 0-based NTU joints 8 and 12
    assert torch.equal(out[:, 1:, :, right_hand], x[:, 1:, :, left_hand])
    assert torch.equal(out[:, 0, :, right_hand], -x[:, 0, :, left_hand])


def test_flip_needs_a_mirror():
    with pytest.raises(ConfigError, match="mirror"):
        spatial_flip(torch.zeros(2, 3, 4, 5, 1), chain_layout(5), 0.5, generator=_g())


def _axis_rotation(axis: int, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
    if axis == 1:
        return np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])


def test_rotation_matches_a_loop():
    x = _x()
    out = random_rotate(x, 30.0, 1.0, _g())
    g = _g()
    main = torch.randint(3, (B,), generator=g).numpy()
    u = torch.rand(B, 3, generator=g).double().numpy()
    expected = np.empty_like(x.numpy())
    for b in range(B):
        points = x[b].numpy().reshape(3, -1)
        for axis in range(3):  # x, then y, then z
            degrees = u[b, axis] * (30.0 if axis == main[b] else 1.0)
            points = _axis_rotation(axis, math.radians(degrees)) @ points
        expected[b] = points.reshape(C, T, V, M)
    assert len(set(main.tolist())) > 1
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def test_rotation_of_zero_degrees_is_identity():
    x = _x()
    assert torch.allclose(random_rotate(x, 0.0, 0.0, _g()), x, atol=1e-12)


def test_rotation_needs_three_coordinates():
    with pytest.raises(ConfigError, match="C=3"):
        random_rotate(torch.zeros(2, 2, 4, 5, 1), generator=_g())


def test_noise_matches_a_loop():
    x = _x()
    out = gaussian_noise(x, 0.5, 0.01, _g())
    g = _g()
    u = torch.rand(B, generator=g).numpy()
    noise = torch.randn(x.shape, generator=g).double().numpy()
    expected = x.numpy().copy()
    for b in range(B):
        if u[b] < 0.5:
            expected[b] = expected[b] + 0.01 * noise[b]
    np.testing.assert_allclose(out.numpy(), expected)


def test_noise_std_is_the_scale():
    x = torch.zeros(64, 3, 50, 25, 2)
    assert abs(float(gaussian_noise(x, 1.0, 0.01, _g()).std()) - 0.01) < 2e-4


def _blur_loop(x: np.ndarray, u: np.ndarray, sigma: np.ndarray, normalised: bool) -> np.ndarray:
    out = x.copy()
    k = np.arange(-7, 8)
    for b in range(len(x)):
        if u[b] >= 0.5:
            continue
        kernel = np.exp(-(k**2) / (2 * sigma[b] ** 2))
        if normalised:
            kernel = kernel / kernel.sum()
        for c in range(C):
            for v in range(V):
                for m in range(M):
                    out[b, c, :, v, m] = np.convolve(x[b, c, :, v, m], kernel, mode="same")  # zero padded
    return out


@pytest.mark.parametrize("normalised", [True, False])
def test_blur_matches_a_loop(normalised):
    x = _x()
    out = gaussian_blur(x, 0.5, 15, (0.1, 2.0), normalised, _g())
    g = _g()
    u = torch.rand(B, generator=g).numpy()
    sigma = (0.1 + 1.9 * torch.rand(B, generator=g).double()).numpy()
    np.testing.assert_allclose(out.numpy(), _blur_loop(x.numpy(), u, sigma, normalised), atol=1e-5)


def test_official_kernel_is_unnormalised():
    sums = gaussian_kernels(torch.tensor([0.1, 1.0, 2.0], dtype=torch.float64), 15, normalised=False).sum(dim=1)
    np.testing.assert_allclose(sums.numpy(), [1.0, math.sqrt(2 * math.pi), 2 * math.sqrt(2 * math.pi)], atol=1e-3)
    normalised = gaussian_kernels(torch.tensor([0.5, 2.0], dtype=torch.float64), 15).sum(dim=1)
    np.testing.assert_allclose(normalised.numpy(), [1.0, 1.0])


def test_axis_mask_matches_a_loop():
    x = _x()
    out = axis_mask(x, 0.5, _g())
    g = _g()
    u = torch.rand(B, generator=g).numpy()
    axis = torch.randint(C, (B,), generator=g).numpy()
    expected = x.numpy().copy()
    for b in range(B):
        if u[b] < 0.5:
            expected[b, axis[b]] = 0.0
    np.testing.assert_array_equal(out.numpy(), expected)


PROBABILISTIC = {
    "flip": lambda x, p, g: spatial_flip(x, NTU25, p, generator=g),
    "noise": lambda x, p, g: gaussian_noise(x, p, 0.01, g),
    "blur": lambda x, p, g: gaussian_blur(x, p, generator=g),
    "axis_mask": lambda x, p, g: axis_mask(x, p, g),
}


@pytest.mark.parametrize("name", sorted(PROBABILISTIC))
def test_probability_zero_is_identity_and_one_always_applies(name):
    x = _x()
    transform = PROBABILISTIC[name]
    assert torch.equal(transform(x, 0.0, _g()), x)
    changed = (transform(x, 1.0, _g()) != x).flatten(1).any(dim=1)
    assert changed.all()


def _params(**overrides) -> SimpleNamespace:
    values = dict(
        flip_prob=0.5,
        official_flip=False,
        rotate_main_degrees=30.0,
        rotate_other_degrees=1.0,
        noise_prob=0.5,
        noise_std=0.01,
        blur_prob=0.5,
        blur_kernel=15,
        blur_sigma_min=0.1,
        blur_sigma_max=2.0,
        official_blur=False,
        axis_mask_prob=0.5,
    )
    return SimpleNamespace(**{**values, **overrides})


def test_extreme_augment_applies_the_official_order():
    x = _x()
    out = extreme_augment(x, NTU25, _params(), _g())
    g = _g()
    expected = spatial_flip(x, NTU25, 0.5, False, g)
    expected = random_rotate(expected, 30.0, 1.0, g)
    expected = gaussian_noise(expected, 0.5, 0.01, g)
    expected = gaussian_blur(expected, 0.5, 15, (0.1, 2.0), True, g)
    expected = axis_mask(expected, 0.5, g)
    assert torch.equal(out, expected)


def test_extreme_augment_without_flip_accepts_a_layout_without_mirror():
    x = torch.randn(2, 3, 16, 5, 1)
    out = extreme_augment(x, chain_layout(5), _params(flip_prob=0.0), _g())
    assert out.shape == x.shape
    with pytest.raises(ConfigError, match="flip_prob=0"):
        extreme_augment(x, chain_layout(5), _params(), _g())
