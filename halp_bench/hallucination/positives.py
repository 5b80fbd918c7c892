"""HaLP's positive hallucination (paper, steps 2-6): walk each key toward other prototypes, stop
before the boundary of its own prototype's cell, and keep the positives that stayed in the cell.

`hallucinate` is the paper's method; `hallucinate_towards` is the same machinery for arbitrary target
directions, so ablations (e.g. interpolating between z_k and z_q) reuse it instead of copying it.
Both are pure: randomness comes only from the explicit `generator`.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from halp_bench.hallucination.sphere import authors_pair_step, cell_step, cell_tables, pair_step, sine_from_cosine, slerp_coefficients, to_working_dtype

TSampling = Literal["paper", "official", "hardest"]
Boundary = Literal["pair", "pair_atan", "cell", "none"]
T_SAMPLINGS: tuple[str, ...] = get_args(TSampling)
BOUNDARIES: tuple[str, ...] = get_args(Boundary)
# "hardest" stops this far (in t, a fraction of the geodesic) before the boundary t*, as the
# authors' code does (`lambda_pos=1000`: t = t* - 0.01). At t* itself the positive is exactly as
# similar to P_sel as to P*, and the rank filter keeps or drops it by rounding (about half
# survived on queue-like keys: 51, 49 and 53 % for three draws of the test's clustered keys); 0.01
# before it all do (tests/test_hallucination.py).
HARDEST_MARGIN = 0.01


def _check_sampling(lam: float, t_sampling: str) -> None:
    if t_sampling not in T_SAMPLINGS:
        raise ValueError(f"unknown t_sampling '{t_sampling}'; choose one of: {', '.join(T_SAMPLINGS)}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")


def sample_steps(t_star: Tensor, lam: float, t_sampling: TSampling, generator: torch.Generator | None) -> Tensor:
    """Step t along each geodesic given its boundary t* (same shape as `t_star`):

    * "paper"   (papers/halp.md step 5):  t ~ U(0, λ t*);
    * "official" (the authors' generator.py): u ~ U(0, λ), t = (1 - u) t*, i.e. t ~ U((1-λ) t*, t*);
    * "hardest" (the paper's ablation, as the authors compute it): t = t* - HARDEST_MARGIN (at least 0).
    """
    _check_sampling(lam, t_sampling)
    if t_sampling == "hardest":
        return (t_star - HARDEST_MARGIN).clamp(min=0.0)
    u = torch.rand(t_star.shape, generator=generator, device=t_star.device, dtype=t_star.dtype)
    if t_sampling == "paper":
        return u * (lam * t_star)
    return (1.0 - lam * u) * t_star


def _steps_from_tables(
    tables: tuple[Tensor, Tensor, Tensor],
    prototypes: Tensor,
    p_star_index: Tensor,
    lam: float,
    t_sampling: TSampling,
    boundary: Boundary,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The shared core, on cosine tables of unit vectors: zp = z·P_j (B,N), tp = T·P_j (B,G,N) and
    cos = z·T (B,G). Returns (α, β, keep), all (B,G), with z(t) = α z + β T the sampled positive.

    By linearity z(t)·P_j = α z·P_j + β T·P_j, so the rank filter needs no (B,G,D) tensor; the
    callers build the positives themselves, each in the cheapest way for their targets."""
    zp, tp, cos = tables
    sin = sine_from_cosine(cos)
    if boundary in ("pair", "pair_atan"):
        star = p_star_index.view(-1, 1)
        target_star = tp.gather(2, star.unsqueeze(1).expand(*cos.shape, 1)).squeeze(-1)  # T·P*
        step = pair_step if boundary == "pair" else authors_pair_step  # pair_atan: the authors' arctan, unclamped
        t_star = step(cos, sin, zp.gather(1, star) - cos, 1.0 - target_star)
    elif boundary == "cell":
        t_star = cell_step(cos, sin, *cell_tables(zp, tp, prototypes, p_star_index))
    else:
        t_star = torch.ones_like(cos)
    alpha, beta = slerp_coefficients(cos, sin, sample_steps(t_star, lam, t_sampling, generator))
    keep = (alpha.unsqueeze(-1) * zp.unsqueeze(1) + beta.unsqueeze(-1) * tp).argmax(-1)
    return alpha, beta, keep == p_star_index.unsqueeze(1)


def _add_anchor_and_normalise(beta_targets: Tensor, alpha: Tensor, anchor: Tensor) -> Tensor:
    """α z + (β T), renormalised, in place on the freshly built (B,G,D) tensor β T: at paper sizes
    every extra (B,G,D) temporary costs as much as the whole rest of the computation on a CPU."""
    positives = beta_targets.addcmul_(alpha.unsqueeze(-1), anchor.unsqueeze(1))
    return positives.div_(positives.norm(dim=-1, keepdim=True))


@torch.no_grad()
def hallucinate_towards(
    anchor: Tensor,
    targets: Tensor,
    prototypes: Tensor,
    lam: float,
    *,
    p_star_index: Tensor | None = None,
    t_sampling: TSampling = "paper",
    boundary: Boundary = "pair",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Hallucinate one positive per target on the geodesic from `anchor` toward that target.

    The boundary t* along each geodesic is
      * "pair": `hardest_step(anchor, P*, target)`, where z(t) becomes as similar to the target as to
        P* (the paper's closed form when the target is a prototype);
      * "cell": `cell_exit_step`, where z(t) stops having P* as its nearest prototype among all N
        (the exact constraint of Eq. 2, meaningful for non-prototype targets such as z_q);
      * "none": t* = 1, the whole geodesic (plain interpolation, only the rank filter applies).
    Then t is drawn by `sample_steps`, z(t) = slerp(anchor, target, t) is renormalised, and the
    rank filter keeps the positives whose nearest prototype is still P*. Inputs are renormalised in
    the working dtype first (bf16-rounded unit vectors are off by ~1e-3).

    Shapes: anchor (B,D), targets (B,G,D), prototypes (N,D), p_star_index (B,) long (default: each
    anchor's nearest prototype) -> positives (B,G,D) unit, keep (B,G) bool. Returned in float32
    (float64 for float64 input) whatever the input precision; no gradient flows.
    """
    _check_sampling(lam, t_sampling)
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary '{boundary}'; choose one of: {', '.join(BOUNDARIES)}")
    if anchor.ndim != 2 or targets.ndim != 3 or targets.shape[0] != anchor.shape[0]:
        raise ValueError(f"need anchor (B,D) and targets (B,G,D), got {tuple(anchor.shape)}, {tuple(targets.shape)}")
    if prototypes.ndim != 2 or {anchor.shape[-1], targets.shape[-1]} != {prototypes.shape[-1]}:
        raise ValueError(f"anchor, targets and prototypes (N,D) must share D, got {tuple(anchor.shape)}, {tuple(targets.shape)}, {tuple(prototypes.shape)}")
    anchor, targets, prototypes = to_working_dtype(anchor, targets, prototypes)
    anchor, targets, prototypes = (F.normalize(v, dim=-1) for v in (anchor, targets, prototypes))
    zp = anchor @ prototypes.T
    if p_star_index is None:
        p_star_index = zp.argmax(-1)
    tables = (zp, targets @ prototypes.T, torch.bmm(targets, anchor.unsqueeze(-1)).squeeze(-1))
    alpha, beta, keep = _steps_from_tables(tables, prototypes, p_star_index, lam, t_sampling, boundary, generator)
    return _add_anchor_and_normalise(beta.unsqueeze(-1) * targets, alpha, anchor), keep


@torch.no_grad()
def hallucinate(
    z_k: Tensor,
    prototypes: Tensor,
    n_positives: int,
    lam: float,
    *,
    t_sampling: TSampling = "paper",
    generator: torch.Generator | None = None,
    boundary: Boundary = "pair",
) -> tuple[Tensor, Tensor]:
    """HaLP's positives (paper, steps 2-6) for a batch of keys (`boundary` "pair_atan": the
    authors' single-argument arctan for t*, `sphere.authors_pair_step`).

    P* = each key's nearest prototype; for each of the `n_positives` (G) positives a P_sel is drawn
    uniformly, with replacement, among the N-1 other prototypes (as the authors' code does); t* is the
    closed-form hardest step toward P_sel, t is sampled per `t_sampling` ("paper": U(0, λt*),
    "official": U((1-λ)t*, t*), "hardest": t* - 0.01), z(t) = slerp(z_k, P_sel, t) is renormalised, and the
    rank filter drops positives that left P*'s cell. Same computation as `hallucinate_towards` with
    prototype targets, but the cosine tables are gathered from z_k·P_j and the (N,N) Gram matrix, and
    P_sel is never copied out per positive.

    Shapes: z_k (B,D) unit keys, prototypes (N,D) unit, N >= 2 -> positives (B,G,D) float32 (float64
    for float64 input), keep (B,G) bool. The loss should average z_q·z^H over the kept ones only.
    """
    _check_sampling(lam, t_sampling)
    n = prototypes.shape[0]
    if n < 2:
        raise ValueError(f"hallucination needs at least 2 prototypes, got {n}")
    if n_positives < 1:
        raise ValueError(f"n_positives must be >= 1, got {n_positives}")
    z_k, prototypes = (F.normalize(v, dim=-1) for v in to_working_dtype(z_k, prototypes))
    zp = z_k @ prototypes.T  # (B,N)
    p_star_index = zp.argmax(-1)
    others = torch.randint(n - 1, (z_k.shape[0], n_positives), generator=generator, device=z_k.device)
    p_sel_index = others + (others >= p_star_index.unsqueeze(1)).long()  # skip P* itself
    tables = (zp, (prototypes @ prototypes.T)[p_sel_index], zp.gather(1, p_sel_index))
    alpha, beta, keep = _steps_from_tables(tables, prototypes, p_star_index, lam, t_sampling, boundary, generator)
    # β P_sel as a (B·G, N) one-hot-times-β matrix product: exact, and no gathered (B,G,D) copy of P_sel
    mix = torch.zeros_like(tables[1]).scatter_(2, p_sel_index.unsqueeze(-1), beta.unsqueeze(-1))
    beta_targets = (mix.flatten(0, 1) @ prototypes).view(*mix.shape[:2], -1)
    return _add_anchor_and_normalise(beta_targets, alpha, z_k), keep
