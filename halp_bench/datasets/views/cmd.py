"""Augmentations as batched tensor ops on the training device, driven by an explicit generator.

Values follow the official CMD/HaLP feeders (official_code.md §2): a temporal crop with scale
U(0.1, 1) (at least `min_crop` frames or the whole sequence) resized by linear interpolation, then
either a shear (p=0.5, off-diagonals U(-1, 1)) or a joint corruption (15 joints, zeroed with p=0.5,
else mapped by a random matrix with entries U(-1, 1)). All of them are config, not constants.
"""

from __future__ import annotations

import torch
from torch import Tensor

from halp_bench.config import AugmentSettings


def uniform(shape: tuple[int, ...], low: float, high: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(low, high) drawn on the generator's device, returned on `like`'s device and dtype."""
    u = torch.rand(shape, generator=generator, device=generator.device if generator else like.device)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def randint(high: int, count: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """`count` integers U{0, ..., high - 1} drawn on the generator's device, returned on `like`'s."""
    return torch.randint(high, (count,), generator=generator, device=generator.device if generator else like.device).to(like.device)


def chosen(count: int, prob: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """(count,) bool: which samples a transform applied with probability `prob` reaches (one U(0, 1) each)."""
    return uniform((count,), 0.0, 1.0, like, generator) < prob


def resize_segments(x: Tensor, starts: Tensor, lengths: Tensor, frames: int) -> Tensor:
    """Cut `x[b, :, starts[b] : starts[b] + lengths[b]]` and resize each to `frames` frames.

    Linear interpolation with `align_corners=False` (what `F.interpolate(mode="bilinear")` does on
    one segment), batched with two gathers. x: (B, C, T, V, M) -> (B, C, frames, V, M).
    """
    b, c, t, v, m = x.shape
    lengths_f = lengths.to(torch.float64).unsqueeze(1)  # (B, 1)
    positions = (torch.arange(frames, device=x.device, dtype=torch.float64) + 0.5).unsqueeze(0)
    src = (positions * lengths_f / frames - 0.5).clamp(min=0.0)  # (B, F)
    low = src.floor().long()
    weight = (src - low).to(x.dtype)
    last = (lengths - 1).unsqueeze(1)
    low = torch.minimum(low, last)
    high = torch.minimum(low + 1, last)
    seq = x.permute(0, 2, 1, 3, 4).reshape(b, t, c * v * m)
    offset = starts.unsqueeze(1)
    gather = lambda idx: torch.gather(seq, 1, (idx + offset).unsqueeze(-1).expand(b, frames, c * v * m))
    out = gather(low) * (1 - weight).unsqueeze(-1) + gather(high) * weight.unsqueeze(-1)
    return out.reshape(b, frames, c, v, m).permute(0, 2, 1, 3, 4).contiguous()


def random_crop_resize(x: Tensor, lengths: Tensor, frames: int, scale: tuple[float, float], min_crop: int, generator: torch.Generator | None = None) -> Tensor:
    """Temporal random crop: length = clip(floor(len * U(scale)), min_crop, len), uniform start."""
    lengths = lengths.to(x.device).clamp(min=1)
    s = uniform((len(x),), scale[0], scale[1], lengths.double(), generator)
    crop = torch.clamp(torch.floor(lengths * s).long(), min=min_crop)
    crop = torch.minimum(crop, lengths)
    room = (lengths - crop + 1).double()
    starts = torch.floor(uniform((len(x),), 0.0, 1.0, room, generator) * room).long()
    starts = torch.minimum(starts, lengths - crop)
    return resize_segments(x, starts, crop, frames)


def center_crop_resize(x: Tensor, lengths: Tensor, frames: int, ratio: float = 0.95) -> Tensor:
    """Deterministic centre crop keeping `ratio` of the valid frames (start = int((1-ratio)*len/2))."""
    lengths = lengths.to(x.device).clamp(min=1)
    starts = torch.floor((1.0 - ratio) * lengths.double() / 2).long()
    crop = (lengths - 2 * starts).clamp(min=1)
    return resize_segments(x, starts, crop, frames)


def shear(x: Tensor, amplitude: float, generator: torch.Generator | None = None) -> Tensor:
    """p -> S p per sample, S = identity with off-diagonal entries U(-amplitude, amplitude)."""
    b, c = x.shape[:2]
    s = uniform((b, c, c), -amplitude, amplitude, x, generator)
    eye = torch.eye(c, device=x.device, dtype=torch.bool)
    s = torch.where(eye, torch.ones_like(s), s)
    return torch.einsum("bij,bjtvm->bitvm", s, x)


def joint_corruption(x: Tensor, num_joints: int, zero_prob: float, amplitude: float, generator: torch.Generator | None = None) -> Tensor:
    """Pick `num_joints` joints per sample (same for all frames and persons); zero them with
    probability `zero_prob`, else map them by p -> R^T p with R's entries U(-amplitude, amplitude)."""
    b, c, _, v, _ = x.shape
    k = min(num_joints, v)
    scores = uniform((b, v), 0.0, 1.0, x, generator)
    picked = torch.zeros(b, v, dtype=torch.bool, device=x.device)
    picked.scatter_(1, scores.argsort(dim=1)[:, :k], True)
    zero = chosen(b, zero_prob, x, generator)
    r = uniform((b, c, c), -amplitude, amplitude, x, generator)
    mapped = torch.einsum("bji,bjtvm->bitvm", r, x)
    replacement = torch.where(zero.view(b, 1, 1, 1, 1), torch.zeros_like(x), mapped)
    return torch.where(picked.view(b, 1, 1, v, 1), replacement, x)


def pretrain_view(x: Tensor, lengths: Tensor, frames: int, cfg: AugmentSettings, generator: torch.Generator | None = None) -> Tensor:
    """One augmented view: crop-resize, then per sample shear (p=shear_prob) or joint corruption."""
    view = random_crop_resize(x, lengths, frames, (cfg.crop_min_scale, cfg.crop_max_scale), cfg.min_crop_frames, generator)
    use_shear = chosen(len(x), cfg.shear_prob, view, generator)
    sheared = shear(view, cfg.shear_amplitude, generator)
    corrupted = joint_corruption(view, cfg.corrupt_joints, cfg.corrupt_zero_prob, cfg.corrupt_amplitude, generator)
    return torch.where(use_shear.view(-1, 1, 1, 1, 1), sheared, corrupted)
