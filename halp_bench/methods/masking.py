"""The math of masked motion prediction as pure functions (MAMP, papers/mamp.md §1.3-1.5, §5).

Shapes: a clip x (N, C, T, V, M) becomes N*M person-sequences of L = T/u x V tokens (u frames of
one joint), each patch holding u*C values ordered frame-major, then coordinate (the authors'
`patchify`). Token index t*V + v (time-major), as the transformer encoder orders its tokens.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

GUMBEL_EPS = 1e-10  # the authors' guard inside both logarithms of the Gumbel draw
MOTION_EPS = 1e-10  # added to max x tau: an all-zero person gets uniform odds instead of 0/0


def patchify(x: Tensor, patch_frames: int) -> Tensor:
    """(N, C, T, V, M) -> (N*M, T/u * V, u*C), u = `patch_frames`, values (frame, coordinate)."""
    n, c, t, v, m = x.shape
    seq = x.permute(0, 4, 2, 3, 1).reshape(n * m, t // patch_frames, patch_frames, v, c)
    return seq.permute(0, 1, 3, 2, 4).reshape(n * m, (t // patch_frames) * v, patch_frames * c)


def kept_count(tokens: int, mask_ratio: float, rounding: str) -> int:
    """Visible tokens per sequence: `round` (the paper's 10 % of 750 = 75) or `floor`, the authors'
    `int(L * (1 - ratio))`, which keeps 74 of 750 at ratio 0.9 (floating point: 74.999...)."""
    exact = tokens * (1 - mask_ratio)
    return max(1, int(exact) if rounding == "floor" else round(exact))


def token_motion(patches: Tensor, joints: int) -> Tensor:
    """(B, L, P) patches -> (B, L): mean |patch[t] - patch[t-1]| over the P values; the first time
    step copies the second."""
    b, length, p = patches.shape
    grid = patches.reshape(b, length // joints, joints, p)
    motion = torch.zeros_like(grid)
    motion[:, 1:] = (grid[:, 1:] - grid[:, :-1]).abs()
    motion[:, 0] = motion[:, 1]
    return motion.mean(dim=-1).reshape(b, length)


def masking_log_odds(motion: Tensor, tau: float) -> Tensor:
    """(B, L) -> log softmax(motion / (max x tau)) over L: a token's log-probability of being drawn
    for masking; the largest ratio between two tokens' odds is e^(1/tau)."""
    scaled = motion / (motion.amax(dim=-1, keepdim=True) * tau + MOTION_EPS)
    return torch.log_softmax(scaled, dim=-1)


def gumbel(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """-log(-log U) with the authors' guards, drawn from `generator` on its device."""
    u = torch.rand(shape, generator=generator, device=generator.device).to(like.device, like.dtype)
    return -torch.log(-torch.log(u + GUMBEL_EPS) + GUMBEL_EPS)


def choose_kept(scores: Tensor, keep: int) -> tuple[Tensor, Tensor]:
    """The `keep` lowest-scoring tokens stay visible, the rest are masked (Gumbel top-k: the
    largest log-odds + noise are masked). Returns (kept indices (B, keep), sorted; mask (B, L) bool,
    True where masked)."""
    kept = scores.argsort(dim=1)[:, :keep].sort(dim=1).values
    mask = torch.ones_like(scores, dtype=torch.bool).scatter(1, kept, False)
    return kept, mask


def motion_aware_kept(patches: Tensor, joints: int, tau: float, keep: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """MAMP's motion-aware masking: tokens that move more are more likely masked."""
    log_odds = masking_log_odds(token_motion(patches, joints), tau)
    return choose_kept(log_odds + gumbel(tuple(log_odds.shape), generator, log_odds), keep)


def random_kept(patches: Tensor, keep: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """MAE's uniform random masking (the MAMP paper's baseline and `mae_coords`)."""
    noise = torch.rand(patches.shape[:2], generator=generator, device=generator.device).to(patches.device)
    return choose_kept(noise, keep)


def frame_motion(x: Tensor) -> Tensor:
    """(N, C, T, V, M) -> x[t+1] - x[t] per frame, the last frame 0 (stride 1, on the resized clip)."""
    motion = torch.zeros_like(x)
    motion[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return motion


def normalise_patches(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """Each patch minus its mean, over sqrt(its unbiased variance + eps) (`norm_skes_loss`)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean over the P values of the squared error, then over the masked tokens of every sequence."""
    per_token = ((pred - target) ** 2).mean(dim=-1)
    return (per_token * mask).sum() / mask.sum().clamp_min(1)


def max_odds_ratio(tau: float) -> float:
    """The bound of the motion-aware bias: the most- over the least-moving token's odds."""
    return math.exp(1.0 / tau)
