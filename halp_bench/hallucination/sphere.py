"""Geodesics on the unit hypersphere and the closed-form hallucination boundary of HaLP (Sec. 3).

All functions are pure and batched: leading dimensions broadcast, device and dtype follow the inputs,
and every degenerate configuration has a defined, finite answer (no NaN/Inf), because one bad row in a
batch of 6400 positives would otherwise poison the whole HaLP loss.

Notation (papers/halp.md): z = z_k the anchor key, P* its nearest prototype, P = P_sel the prototype (or
any target) we walk toward, Ω the angle between z and P, z(t) the geodesic from z (t=0) to P (t=1).
"""

from __future__ import annotations

from functools import reduce

import torch
from torch import Tensor


def _tiny(x: Tensor) -> float:
    """Sine below which a geodesic direction is roundoff: ~100 ulp of the dtype (1.2e-5 in float32)."""
    return 100.0 * torch.finfo(x.dtype).eps


def to_working_dtype(*xs: Tensor) -> tuple[Tensor, ...]:
    """Cast to a common dtype of at least float32 (half-precision angles are useless)."""
    dtype = reduce(torch.promote_types, (x.dtype for x in xs), torch.float32)
    return tuple(x.to(dtype) for x in xs)


def _tangent(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Unit tangent u at `a` toward `b`, cos Ω, sin Ω, and Ω itself (0 where the direction is void).

    sin Ω is the norm of b's component orthogonal to a (projected out twice, so u stays orthogonal to
    a even when b is nearly ±a), and Ω = atan2(sin Ω, cos Ω) stays accurate for tiny and near-π angles
    where acos(a·b) loses half the digits. Where sin Ω is roundoff (b = ±a) u = 0 and Ω = 0: the
    geodesic toward an antipode is not unique, so we define it as "stay at a".
    """
    cos = (a * b).sum(-1, keepdim=True)
    perp = b - cos * a
    perp = perp - (perp * a).sum(-1, keepdim=True) * a
    sin = perp.norm(dim=-1, keepdim=True)
    ok = sin > _tiny(sin)
    u = torch.where(ok, perp / torch.where(ok, sin, torch.ones_like(sin)), torch.zeros_like(perp))
    cos, sin, ok = cos.squeeze(-1), sin.squeeze(-1), ok.squeeze(-1)
    omega = torch.where(ok, torch.atan2(sin, cos), torch.zeros_like(cos))
    return u, cos, sin, omega


def slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Point(s) z(t) on the great-circle arc from unit `a` (t=0) to unit `b` (t=1).

    Paper, step 3: z(t) = [sin((1-t)Ω) a + sin(tΩ) b] / sin Ω with cos Ω = a·b. We evaluate the
    equivalent z(t) = cos(tΩ) a + sin(tΩ) u (u = unit tangent at a toward b), which has no division
    by sin Ω: it returns `a` when b = a (Ω→0) and also when b = -a (Ω→π, no unique geodesic).

    Shapes: a (..., D), b (..., D) broadcast against each other; t broadcasts against their leading
    dims (e.g. a (B,1,D), b (B,G,D), t (B,G) -> (B,G,D)). Output dtype: at least float32.
    """
    a, b = to_working_dtype(a, b)
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    u, _, _, omega = _tangent(a, b)
    angle = (t * omega).unsqueeze(-1)
    return torch.cos(angle) * a + torch.sin(angle) * u


def _first_crossing(a: Tensor, b: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Angle s in [0, π] of the first zero of f(s) = a sin(Ω-s)/sin Ω + b sin(s)/sin Ω, the value of
    z(s/Ω)·(P* - P_j) for a = z·(P* - P_j), b = P·(P* - P_j).

    f(s) = 0  <=>  tan s = a sin Ω / (a cos Ω - b) = sin Ω / (κ + cos Ω) with κ = -b/a, the paper's
    formula multiplied through by a so that a = 0 needs no special case. f is a sinusoid in s, so its
    zeros are π apart and f(0) = a ≥ 0 makes the one in [0, π] the first; atan2 picks that branch,
    including (π/2, π] when κ + cos Ω < 0 where a plain arctan would go negative. `+ 0.0` turns a
    -0.0 into +0.0 so atan2 never returns -π for a = 0.
    """
    a = a.clamp_min(0.0) + 0.0
    return torch.atan2(a * sin, a * cos - b)


def hardest_step(z_k: Tensor, p_star: Tensor, p_sel: Tensor) -> Tensor:
    """Closed-form t* in [0, 1]: the first t at which z(t) = slerp(z_k, p_sel, t) is as similar to
    `p_star` as to `p_sel` (paper, step 4):

        t* = atan2(sin Ω, κ + cos Ω) / Ω,   κ = (1 - P_sel·P*) / (z_k·(P* - P_sel)),   cos Ω = P_sel·z_k.

    Degenerate cases, each with a finite answer:
      * P_sel = P*: z(t) is never closer to P_sel than to P*, no boundary -> t* = 1;
      * z_k·(P* - P_sel) <= 0 (z_k already as close to P_sel, e.g. z_k = P_sel) -> t* = 0;
      * P_sel = -z_k (Ω = π): the geodesic is undefined and slerp stays at z_k -> t* = 0;
      * z_k = P* gives the midpoint t* = 1/2; roundoff is clamped into [0, 1].

    Shapes: unit vectors (..., D) broadcasting against each other (e.g. z_k (B,1,D), p_star (B,1,D),
    p_sel (B,G,D)) -> (...,) e.g. (B,G). Output dtype: at least float32.
    """
    z_k, p_star, p_sel = to_working_dtype(z_k, p_star, p_sel)
    _, cos, sin, omega = _tangent(z_k, p_sel)
    diff = p_star - p_sel
    dist = diff.norm(dim=-1)  # 1 - P_sel·P* = dist²/2 for unit vectors, and exactly 0 for P_sel = P*
    s = _first_crossing((z_k * diff).sum(-1), -0.5 * dist.square(), cos, sin)
    step = torch.where(omega > 0, s / torch.where(omega > 0, omega, torch.ones_like(omega)), 0.0)
    step = torch.where(dist > _tiny(dist), step, 1.0)
    return step.clamp(0.0, 1.0)


def cell_exit_step(z_k: Tensor, targets: Tensor, prototypes: Tensor, p_star_index: Tensor) -> Tensor:
    """First t at which slerp(z_k, target, t) stops having P* as its nearest prototype among all N.

    This is the exact boundary of the constraint in the paper's Eq. 2 along one geodesic, where
    `hardest_step` relaxes it to the pair {P*, P_sel}: spherical Voronoi cells are intersections of
    hemispheres, so the arc leaves the cell at the earliest of its per-competitor crossings. It makes
    sense for any target direction (e.g. z_q in the interpolation ablation), not only prototypes.
    Competitors equal to P* and rows whose target is ±z_k give t* = 1 and 0 as in `hardest_step`.

    Shapes: z_k (B,D), targets (B,G,D), prototypes (N,D), p_star_index (B,) long -> (B,G).
    """
    z_k, targets, prototypes = to_working_dtype(z_k, targets, prototypes)
    p_star = prototypes[p_star_index]  # (B,D)
    diff = p_star.unsqueeze(1) - prototypes.unsqueeze(0)  # (B,N,D): P* - P_j
    a = torch.einsum("bd,bnd->bn", z_k, diff).unsqueeze(1)  # (B,1,N)
    b = torch.einsum("bgd,bnd->bgn", targets, diff)  # (B,G,N)
    _, cos, sin, omega = _tangent(z_k.unsqueeze(1), targets)  # (B,G)
    s = _first_crossing(a, b, cos.unsqueeze(-1), sin.unsqueeze(-1))  # (B,G,N)
    safe_omega = torch.where(omega > 0, omega, torch.ones_like(omega)).unsqueeze(-1)
    step = torch.where(s <= omega.unsqueeze(-1), s / safe_omega, 1.0)
    step = torch.where(a < 0, 0.0, step)  # z_k already outside the cell of P*
    same_as_star = (diff.norm(dim=-1) <= _tiny(s)).unsqueeze(1)  # (B,1,N)
    step = torch.where(same_as_star, 1.0, step).amin(-1)
    return torch.where(omega > 0, step, 0.0).clamp(0.0, 1.0)


def nearest_prototype(z: Tensor, prototypes: Tensor) -> Tensor:
    """Index of the most similar prototype (max cosine = min geodesic distance) for each row.

    Shapes: z (..., D), prototypes (N, D) -> (...,) long. Ties go to the lowest index.
    """
    z, prototypes = to_working_dtype(z, prototypes)
    return (z @ prototypes.T).argmax(-1)


def rank_filter(positives: Tensor, prototypes: Tensor, p_star_index: Tensor) -> Tensor:
    """Paper, step 6: keep a hallucinated positive only if its nearest prototype among all N is
    still its anchor's P* (the pairwise t* ignores the other N-2 prototypes).

    Shapes: positives (B, G, D), prototypes (N, D), p_star_index (B,) -> (B, G) bool.
    """
    return nearest_prototype(positives, prototypes) == p_star_index.unsqueeze(-1)
