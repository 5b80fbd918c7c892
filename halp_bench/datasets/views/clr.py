"""The ST-GCN family's "normal" views (SkeletonCLR, CrosSCLR, AimCLR's two normal copies) as batched
tensor ops driven by an explicit generator (field_methods.md §2.4).

Their preprocessing resizes each sequence's valid frames to a fixed length (50) once; the feeder
then crops with mirrored padding and shears. Here the resize happens per batch on the training
device (same linear interpolation, `transforms.resize_segments`), then the two augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from halp_bench.config import ViewSettings
from halp_bench.datasets.views.cmd import randint, resize_segments, shear
from halp_bench.validation import ranged


@dataclass
class NormalAugmentSettings(ViewSettings):
    """The normal augmentations of the official SkeletonCLR/CrosSCLR/AimCLR configs: a temporal crop
    with mirrored padding of T // `temporal_padding_ratio` frames per side, then a shear whose
    off-diagonals are U(-`shear_amplitude`, `shear_amplitude`). A value <= 0 turns that
    augmentation off, as in their code (their linear evaluation sets both to -1)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    shear_amplitude: float = ranged(0.5, "[0, inf)")
    temporal_padding_ratio: int = ranged(6, "[1, inf)")
    # their preprocessing's `data_type='relative'`: every frame's joints taken relative to the
    # layout's graph centre (NTU: spine shoulder), so a shear does not turn the camera distance
    # into a shift; the method's evaluated encoder sees its input the same way (`RelativeEncoder`)
    relative: bool = True


def relative_to_joint(x: Tensor, joint: int) -> Tensor:
    """(B, C, T, V, M) with joint `joint` subtracted from every joint, per frame and person (that
    joint becomes 0; absent persons and padding stay 0). Linear, so it commutes with resizing,
    cropping, shearing and rotating: applying it first or last gives the same view."""
    return x - x[:, :, :, joint : joint + 1]


def mirrored_crop(x: Tensor, ratio: int, generator: torch.Generator | None = None) -> Tensor:
    """Per sample: pad T // ratio mirrored frames on each side (edge frame included), then keep T
    frames from a start drawn from U{0, ..., 2 * pad}. x: (B, C, T, V, M), every frame valid."""
    b, _, t = x.shape[:3]
    pad = t // ratio
    if pad == 0:
        return x
    padded = torch.cat([x[:, :, :pad].flip(2), x, x[:, :, t - pad :].flip(2)], dim=2)
    starts = randint(2 * pad + 1, b, x, generator)
    index = starts.view(b, 1, 1, 1, 1) + torch.arange(t, device=x.device).view(1, 1, t, 1, 1)
    return torch.gather(padded, 2, index.expand_as(x))


def normal_view(
    x: Tensor, lengths: Tensor, frames: int, settings: NormalAugmentSettings, generator: torch.Generator | None = None, center_joint: int | None = None
) -> Tensor:
    """One normal view of raw sequences x (B, C, T_max, V, M) with valid `lengths` (B,): relative
    to `center_joint` (with `settings.relative`), the valid frames resized to `frames`, then the
    mirrored-padding crop, then the shear (each if enabled)."""
    lengths = lengths.to(x.device).clamp(min=1)
    if settings.relative and center_joint is not None:
        x = relative_to_joint(x, center_joint)
    view = resize_segments(x, torch.zeros_like(lengths), lengths, frames)
    if settings.temporal_padding_ratio > 0:
        view = mirrored_crop(view, settings.temporal_padding_ratio, generator)
    if settings.shear_amplitude > 0:
        view = shear(view, settings.shear_amplitude, generator)
    return view
