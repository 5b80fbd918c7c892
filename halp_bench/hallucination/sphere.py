"""Geodesics on the unit hypersphere and the closed-form hallucination boundary of HaLP (Sec. 3).

All functions are pure and batched: leading dimensions broadcast, device and dtype follow the inputs
(computed in at least float32), and every degenerate configuration has a defined, finite answer,
because one NaN among the 6400 positives of a batch would poison the whole HaLP loss.

Notation (papers/halp.md): z = z_k the anchor key, P* its nearest prototype, P = P_sel the prototype (or
any target) we walk toward, Ω the angle between z and P, z(t) the geodesic from z (t=0) to P (t=1).

The boundary steps are functions of cosines only (`pair_step`, `cell_step`, and `slerp_coefficients`
for the geodesic): the vector API (`slerp`, `hardest_step`, `cell_exit_step`) feeds them from vectors,
`hallucinate` from small cosine tables (anchor·prototype, target·prototype), so that it never builds
(B, G, D) intermediates apart from the positives themselves.
"""

from __future__ import annotations

from functools import reduce

import torch
import torch.nn.functional as F
from torch import Tensor


def _tiny(x: Tensor) -> float:
    """Sine (or 1 - cosine) below which a direction is roundoff: 100 ulp (1.2e-5 in float32)."""
    return 100.0 * torch.finfo(x.dtype).eps


def to_working_dtype(*xs: Tensor) -> tuple[Tensor, ...]:
    """Cast to a common dtype of at least float32 (half-precision angles are useless)."""
    dtype = reduce(torch.promote_types, (x.dtype for x in xs), torch.float32)
    return tuple(x.to(dtype) for x in xs)


def sine_from_cosine(cos: Tensor) -> Tensor:
    """sin Ω = sqrt((1 - c)(1 + c)) (1 - c² would lose precision near c = ±1), set to 0 where it is
    below its noise floor (sin² <= 100 ulp, sin <= 3.5e-3 in float32): a cosine rounded to 1 ulp
    cannot tell such angles from 0 or π, so they are treated as "no direction", like b = ±a."""
    sin_sq = (1.0 - cos) * (1.0 + cos)
    return torch.where(sin_sq > _tiny(cos), sin_sq, 0.0).sqrt()


def _angle(cos: Tensor, sin: Tensor) -> Tensor:
    """Ω = atan2(sin, cos), and 0 where sin Ω is roundoff (b = ±a: no unique geodesic)."""
    return torch.where(sin > _tiny(sin), torch.atan2(sin, cos), 0.0)


def slerp_coefficients(cos: Tensor, sin: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
    """(α, β) with z(t) = α a + β b: the paper's step 3, α = sin((1-t)Ω)/sin Ω, β = sin(tΩ)/sin Ω,
    for when only cosines are at hand (`hallucinate`); `slerp` is the vector form.

    Where the direction is void (b = a, Ω→0, or b = -a, Ω→π, where the geodesic is not unique) we
    define z(t) = a, i.e. (α, β) = (1, 0).
    """
    omega = _angle(cos, sin)
    ok = omega > 0
    safe_sin = torch.where(ok, sin, 1.0)
    alpha = torch.where(ok, torch.sin((1.0 - t) * omega) / safe_sin, 1.0)
    beta = torch.where(ok, torch.sin(t * omega) / safe_sin, 0.0)
    return alpha, beta


def _cos_sin(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """cos Ω = a·b, sin Ω and the component of b orthogonal to a (..., D), from vectors.

    sin Ω is the norm of that component, accurate for tiny angles where sqrt(1 - (a·b)²) is not; it
    is projected out twice so that it stays orthogonal to a even when b is nearly ±a."""
    cos = (a * b).sum(-1, keepdim=True)
    perp = b - cos * a
    perp = perp - (perp * a).sum(-1, keepdim=True) * a
    return cos.squeeze(-1), perp.norm(dim=-1), perp


def slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Point(s) z(t) = [sin((1-t)Ω) a + sin(tΩ) b] / sin Ω on the great-circle arc from unit `a`
    (t=0) to unit `b` (t=1), cos Ω = a·b (paper, step 3).

    Evaluated as cos(tΩ) a + sin(tΩ) u with u the unit tangent at a toward b, which stays accurate
    near Ω = π where the two large coefficients of the textbook form cancel. Returns `a` when b = ±a
    (see `slerp_coefficients`).

    Shapes: a (..., D), b (..., D) broadcast against each other; t broadcasts against their leading
    dims (e.g. a (B,1,D), b (B,G,D), t (B,G) -> (B,G,D)).
    """
    a, b = to_working_dtype(a, b)
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    cos, sin, perp = _cos_sin(a, b)
    omega = _angle(cos, sin)
    ok = (omega > 0).unsqueeze(-1)
    u = torch.where(ok, perp / torch.where(ok, sin.unsqueeze(-1), 1.0), 0.0)
    angle = (t * omega).unsqueeze(-1)
    return torch.cos(angle) * a + torch.sin(angle) * u


def _first_crossing(a: Tensor, b: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Angle s in [0, π] of the first zero of f(s) = [a sin(Ω-s) + b sin(s)] / sin Ω, which is
    z(s/Ω)·(P* - P_j) for a = z·(P* - P_j) >= 0 and b = P·(P* - P_j).

    f(s) = 0  <=>  tan s = a sin Ω / (a cos Ω - b) = sin Ω / (κ + cos Ω) with κ = -b/a: the paper's
    formula multiplied through by a, so a = 0 needs no special case. f is a sinusoid in s, its zeros
    are π apart and f(0) = a >= 0, so the zero in [0, π] is the first one; atan2 picks it, including
    the branch (π/2, π] when κ + cos Ω < 0, where a plain arctan would return a negative angle.
    `+ 0.0` turns -0.0 into +0.0 so that atan2 never returns -π for a = 0.
    """
    a = a.clamp_min(0.0) + 0.0
    return torch.atan2(a * sin, a * cos - b)


def pair_step(cos: Tensor, sin: Tensor, a: Tensor, gap: Tensor) -> Tensor:
    """t* of `hardest_step` from cos Ω = z·P_sel, sin Ω, a = z·(P* - P_sel) and gap = 1 - P*·P_sel."""
    omega = _angle(cos, sin)
    s = _first_crossing(a, -gap, cos, sin)
    step = torch.where(omega > 0, s / torch.where(omega > 0, omega, 1.0), 0.0)
    step = torch.where(gap > _tiny(gap), step, 1.0)
    return step.clamp(0.0, 1.0)


def authors_pair_step(cos: Tensor, sin: Tensor, a: Tensor, gap: Tensor) -> Tensor:
    """t* as the authors' `generator.py` computes it, from the same quantities as `pair_step`:
    atan(sin Ω / (κ + cos Ω + 1e-8)) / (Ω + 1e-8) with κ = gap / (a + 1e-8). The single-argument
    arctan is negative where κ + cos Ω < 0 (the zero lies beyond π/2 on the great circle; `pair_step`
    takes it, this returns a step away from P_sel), and nothing is clamped."""
    kappa = gap / (a + 1e-8)
    omega = torch.atan2(sin, cos)
    return torch.atan(sin / (kappa + cos + 1e-8)) / (omega + 1e-8)


def hardest_step(z_k: Tensor, p_star: Tensor, p_sel: Tensor) -> Tensor:
    """Closed-form t* in [0, 1]: the first t at which z(t) = slerp(z_k, p_sel, t) is as similar to
    `p_star` as to `p_sel` (paper, step 4):

        t* = atan2(sin Ω, κ + cos Ω) / Ω,   κ = (1 - P_sel·P*) / (z_k·(P* - P_sel)),   cos Ω = P_sel·z_k

    Degenerate cases, each with a finite answer:
      * P_sel = P* (1 - P_sel·P* within 100 ulp): z(t) never gets closer to P_sel -> t* = 1;
      * z_k·(P* - P_sel) <= 0 (z_k already as close to P_sel, e.g. z_k = P_sel) -> t* = 0;
      * P_sel = -z_k (Ω = π): the geodesic is undefined and slerp stays at z_k -> t* = 0;
      * z_k = P* gives the midpoint t* = 1/2; roundoff is clamped into [0, 1].

    Shapes: unit vectors (..., D) broadcasting against each other (e.g. z_k (B,1,D), p_star (B,1,D),
    p_sel (B,G,D)) -> (...,) e.g. (B,G).
    """
    z_k, p_star, p_sel = to_working_dtype(z_k, p_star, p_sel)
    cos, sin, _ = _cos_sin(z_k, p_sel)
    diff = p_star - p_sel
    # 1 - P_sel·P* as |P* - P_sel|²/2: exactly 0 for the same prototype, accurate for close ones
    return pair_step(cos, sin, (z_k * diff).sum(-1), 0.5 * diff.square().sum(-1))


def cell_step(cos: Tensor, sin: Tensor, a: Tensor, b: Tensor, same_as_star: Tensor) -> Tensor:
    """t* of `cell_exit_step` from cos Ω, sin Ω (B,G), a = z·(P* - P_j) (B,1,N), b = T·(P* - P_j)
    (B,G,N) and a mask (B,1,N) of the prototypes that are P* itself (or equal to it)."""
    omega = _angle(cos, sin).unsqueeze(-1)
    s = _first_crossing(a, b, cos.unsqueeze(-1), sin.unsqueeze(-1))  # (B,G,N)
    step = torch.where(s <= omega, s / torch.where(omega > 0, omega, 1.0), 1.0)  # no zero on the arc: 1
    step = torch.where(a < 0, 0.0, step)  # z_k already outside the cell of P*
    step = torch.where(same_as_star, 1.0, step).amin(-1)
    return torch.where(omega.squeeze(-1) > 0, step, 0.0).clamp(0.0, 1.0)


def cell_exit_step(z_k: Tensor, targets: Tensor, prototypes: Tensor, p_star_index: Tensor) -> Tensor:
    """First t at which slerp(z_k, target, t) stops having P* as its nearest prototype among all N.

    This is the exact boundary of the constraint in the paper's Eq. 2 along one geodesic, which
    `hardest_step` relaxes to the pair {P*, P_sel}: a spherical Voronoi cell is an intersection of
    hemispheres, so the arc leaves it at the earliest of its per-competitor crossings. It makes
    sense for any target direction (e.g. z_q in the interpolation ablation), not only prototypes.
    Rows whose target is ±z_k give 0, like `hardest_step`; P*'s duplicates are not competitors.

    Shapes: z_k (B,D), targets (B,G,D), prototypes (N,D), p_star_index (B,) long -> (B,G).
    """
    z_k, targets, prototypes = to_working_dtype(z_k, targets, prototypes)
    cos, sin, _ = _cos_sin(z_k.unsqueeze(1), targets)  # (B,G)
    zp, tp = z_k @ prototypes.T, targets @ prototypes.T  # (B,N), (B,G,N)
    return cell_step(cos, sin, *cell_tables(zp, tp, prototypes, p_star_index))


def cell_tables(zp: Tensor, tp: Tensor, prototypes: Tensor, p_star_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, same_as_star) of `cell_step` from zp = z·P_j (B,N) and tp = T·P_j (B,G,N)."""
    star = p_star_index.view(-1, 1)
    a = (zp.gather(1, star) - zp).unsqueeze(1)  # (B,1,N)
    b = tp.gather(2, star.unsqueeze(1).expand(*tp.shape[:2], 1)) - tp  # (B,G,N)
    # 1 - P_i·P_j as |P_i - P_j|²/2, (N,N): exactly 0 for duplicated prototypes
    gap = 0.5 * (prototypes.unsqueeze(1) - prototypes.unsqueeze(0)).square().sum(-1)
    return a, b, (gap[p_star_index] <= _tiny(gap)).unsqueeze(1)


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


def clustered_unit_vectors(n: int, dim: int, clusters: int, spread: float = 0.08, generator: torch.Generator | None = None) -> Tensor:
    """n unit vectors around `clusters` random unit centres (a von Mises-Fisher-like mixture): a
    stand-in for the newest queue keys, whose prototypes HaLP fits (benchmarks and tests)."""
    centres = F.normalize(torch.randn(clusters, dim, generator=generator), dim=1)
    labels = torch.randint(clusters, (n,), generator=generator)
    return F.normalize(centres[labels] + spread * torch.randn(n, dim, generator=generator), dim=1)
