"""AimCLR's extreme augmentations (Guo et al., AAAI 2022), batched on (B, C, T, V, M).

Applied after the normal crop and shear, in the order of the official `_strong_aug` with its
default `aug_method='12345'` (field_methods.md §6.2): spatial flip, rotation, Gaussian noise,
Gaussian blur, axis mask. Each function decides per sample with its own probability and draws
every random number from the passed generator, in the order its docstring gives (the tests replay
that order). Two official-code quirks are options, not defaults: the code's flip only swaps the
left and right joints (the paper mirrors the body) and its blur kernel is not normalised.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from halp_bench.datasets.views.cmd import chosen, randint, uniform
from halp_bench.errors import ConfigError
from halp_bench.skeleton import SkeletonLayout


class ExtremeAugmentParams(Protocol):
    """The fields `extreme_augment` reads (AimCLR's augment settings provide them)."""

    flip_prob: float
    official_flip: bool
    rotate_main_degrees: float
    rotate_other_degrees: float
    noise_prob: float
    noise_std: float
    blur_prob: float
    blur_kernel: int
    blur_sigma_min: float
    blur_sigma_max: float
    official_blur: bool
    axis_mask_prob: float


def check_flip_layout(layout: SkeletonLayout) -> tuple[int, ...]:
    """The layout's left-right joint permutation; flipping needs one."""
    if layout.mirror is None:
        raise ConfigError(
            f"the spatial flip needs a left-right joint mirror, which layout '{layout.name}' does not define "
            "(skeleton.py: ntu25 and kinect_v1_20 have one); set augment.flip_prob=0 to train without flipping"
        )
    return layout.mirror


def spatial_flip(x: Tensor, layout: SkeletonLayout, prob: float, official: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """Swap left and right joints (`layout.mirror`) with probability `prob` per sample, and negate
    x (channel 0) so that the body is mirrored, as the paper describes; `official`: only swap the
    joints, as the official code does. Draws: U(0,1) per sample."""
    mirror = check_flip_layout(layout)
    picked = chosen(len(x), prob, x, generator)
    flipped = x[:, :, :, list(mirror)]
    if not official:
        sign = torch.ones(x.shape[1], device=x.device, dtype=x.dtype)
        sign[0] = -1.0
        flipped = flipped * sign.view(1, -1, 1, 1, 1)
    return torch.where(picked.view(-1, 1, 1, 1, 1), flipped, x)


def rotation_matrices(angles: Tensor) -> Tensor:
    """(B, 3) angles in radians about x, y, z -> (B, 3, 3) R = Rz Ry Rx, applied as p' = R p.

    Each factor is written as the official code writes it, e.g. Rx = [[1,0,0],[0,c,s],[0,-s,c]]."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def stack(rows: list[list[Tensor]]) -> Tensor:
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    rx = stack([[one, zero, zero], [zero, c[:, 0], s[:, 0]], [zero, -s[:, 0], c[:, 0]]])
    ry = stack([[c[:, 1], zero, -s[:, 1]], [zero, one, zero], [s[:, 1], zero, c[:, 1]]])
    rz = stack([[c[:, 2], s[:, 2], zero], [-s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def random_rotate(x: Tensor, main_degrees: float = 30.0, other_degrees: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Rotate every sample (no probability): a main axis drawn uniformly from {x, y, z} turns by
    U(0, main_degrees), the other two by U(0, other_degrees); the rotations are applied x, then y,
    then z. Angles are non-negative, as in the official code (field_methods.md §6.2).
    Draws: the main axis per sample (randint), then U(0,1) per sample and axis."""
    if x.shape[1] != 3:
        raise ConfigError(f"the extreme rotation needs 3-D joints (C=3), got C={x.shape[1]}")
    b = len(x)
    main = randint(3, b, x, generator)
    u = uniform((b, 3), 0.0, 1.0, x, generator)
    is_main = torch.arange(3, device=x.device).unsqueeze(0) == main.unsqueeze(1)
    degrees = u * torch.where(is_main, torch.full_like(u, main_degrees), torch.full_like(u, other_degrees))
    r = rotation_matrices(degrees * (math.pi / 180.0))
    return torch.einsum("bij,bjtvm->bitvm", r, x)


def gaussian_noise(x: Tensor, prob: float, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Add i.i.d. N(0, std^2) noise to every coordinate of a sample, with probability `prob` per
    sample (the code's `np.random.normal(0, 0.01)`: 0.01 is the standard deviation).
    Draws: U(0,1) per sample, then one normal per element of the batch."""
    picked = chosen(len(x), prob, x, generator)
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device).to(device=x.device, dtype=x.dtype)
    return torch.where(picked.view(-1, 1, 1, 1, 1), x + std * noise, x)


def gaussian_kernels(sigma: Tensor, size: int, normalised: bool = True) -> Tensor:
    """(B,) sigmas -> (B, size) kernels exp(-k^2 / 2 sigma^2), k = -size//2 .. size//2, each
    divided by its sum when `normalised` (the official code does not, so its blur also scales
    the sequence by up to ~5 at sigma 2)."""
    radius = size // 2
    k = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    kernels = torch.exp(-k.square().unsqueeze(0) / (2.0 * sigma.square().unsqueeze(1)))
    return kernels / kernels.sum(dim=1, keepdim=True) if normalised else kernels


def gaussian_blur(
    x: Tensor, prob: float, size: int = 15, sigma_range: tuple[float, float] = (0.1, 2.0), normalised: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Temporal Gaussian blur with probability `prob` per sample: every coordinate of every joint
    and person is convolved over time with the sample's kernel (depthwise), zero-padded to keep T.
    Draws: U(0,1) per sample, then sigma ~ U(sigma_range) per sample."""
    if size % 2 != 1:
        raise ConfigError(f"augment.blur_kernel must be odd (a centred kernel), got {size}")
    b, c, t, v, m = x.shape
    picked = chosen(b, prob, x, generator)
    sigma = uniform((b,), sigma_range[0], sigma_range[1], x, generator)
    weight = gaussian_kernels(sigma, size, normalised).repeat_interleave(c * v * m, dim=0).unsqueeze(1)
    series = x.permute(0, 1, 3, 4, 2).reshape(1, b * c * v * m, t)
    blurred = F.conv1d(series, weight, padding=size // 2, groups=b * c * v * m)
    blurred = blurred.reshape(b, c, v, m, t).permute(0, 1, 4, 2, 3)
    return torch.where(picked.view(-1, 1, 1, 1, 1), blurred, x)


def axis_mask(x: Tensor, prob: float, generator: torch.Generator | None = None) -> Tensor:
    """With probability `prob` per sample, zero one coordinate channel (drawn uniformly) for all
    frames, joints and persons. Draws: U(0,1) per sample, then the channel per sample (randint)."""
    b, c = x.shape[:2]
    picked = chosen(b, prob, x, generator)
    axis = randint(c, b, x, generator)
    masked = (torch.arange(c, device=x.device).unsqueeze(0) == axis.unsqueeze(1)) & picked.unsqueeze(1)
    return x.masked_fill(masked.view(b, c, 1, 1, 1), 0.0)


def extreme_augment(x: Tensor, layout: SkeletonLayout, s: ExtremeAugmentParams, generator: torch.Generator | None = None) -> Tensor:
    """The five extreme augmentations in the official order (flip, rotate, noise, blur, axis mask)
    on an already normally augmented batch. A transform with probability 0 draws nothing."""
    if s.flip_prob > 0:
        x = spatial_flip(x, layout, s.flip_prob, s.official_flip, generator)
    x = random_rotate(x, s.rotate_main_degrees, s.rotate_other_degrees, generator)
    if s.noise_prob > 0:
        x = gaussian_noise(x, s.noise_prob, s.noise_std, generator)
    if s.blur_prob > 0:
        x = gaussian_blur(x, s.blur_prob, s.blur_kernel, (s.blur_sigma_min, s.blur_sigma_max), not s.official_blur, generator)
    if s.axis_mask_prob > 0:
        x = axis_mask(x, s.axis_mask_prob, generator)
    return x
