"""Motion and bone streams computed from the (augmented) joint stream on the training device."""

from __future__ import annotations

import torch
from torch import Tensor

from halp_bench.skeleton import SkeletonLayout

MODALITIES: tuple[str, ...] = ("joint", "motion", "bone")


def motion(x: Tensor) -> Tensor:
    """m[:, :, t] = x[:, :, t+1] - x[:, :, t]; the last frame is zero. x: (N, C, T, V, M)."""
    out = torch.zeros_like(x)
    out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return out


def bone_index(layout: SkeletonLayout, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """(joints, partners) index tensors of the layout's bones."""
    joints = torch.tensor([a for a, _ in layout.bones], dtype=torch.long, device=device)
    partners = torch.tensor([b for _, b in layout.bones], dtype=torch.long, device=device)
    return joints, partners


def bone(x: Tensor, layout: SkeletonLayout) -> Tensor:
    """b[..., j, :] = x[..., j, :] - x[..., partner(j), :] for each bone; joints without a bone are 0."""
    joints, partners = bone_index(layout, x.device)
    out = torch.zeros_like(x)
    out[:, :, :, joints] = x[:, :, :, joints] - x[:, :, :, partners]
    return out


def modality(x: Tensor, name: str, layout: SkeletonLayout) -> Tensor:
    """One stream by name: joint (the input), motion or bone."""
    if name == "joint":
        return x
    if name == "motion":
        return motion(x)
    if name == "bone":
        return bone(x, layout)
    raise ValueError(f"unknown modality '{name}'; choose one of: {', '.join(MODALITIES)}")
