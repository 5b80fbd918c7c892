"""Riemannian k-means on the unit hypersphere: HaLP's prototypes (paper, step 1), in plain torch.

The paper fits N = 20 prototypes to the 256 newest queue keys with geomstats' `RiemannianKMeans`
(one k-means++ init, Fréchet means by gradient descent, one cluster at a time, in numpy); that costs
~50 ms per refresh on a CPU. Here all `n_init` restarts run as one batched tensor computation and each
Lloyd iteration is one matrix product and one scatter-add, so a refresh takes a few ms on a CPU core
and stays on the training device.

Objective: the geodesic inertia Σ_i min_j θ(x_i, c_j)², θ = arccos(x·c), which both implementations
minimise; `geodesic_inertia` measures it accurately for comparisons.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def _inverse_karcher_weight(cos: Tensor) -> Tensor:
    """1 / w for w = θ / sin θ, cos θ = `cos`: the inverse Karcher-mean weight of a point at angle θ.

    sinc(θ/π) = sin θ / θ has no 0/0 at θ = 0; clamping c >= -1 + 1e-6 keeps antipodal points (which
    are never cluster members) from getting an infinite weight.
    """
    return torch.sinc(torch.acos(cos.clamp(-1.0 + 1e-6, 1.0)) * (1.0 / math.pi))


def _kmeans_pp(x: Tensor, n_clusters: int, n_init: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding for `n_init` restarts at once: each new centre is a data point drawn with
    probability ∝ its squared chordal distance 2(1 - cos θ) to the nearest chosen centre. That is
    within a factor π²/4 of θ², so k-means++'s O(log k) guarantee carries over, and it needs no
    acos in a loop that runs n_clusters - 1 times. Returns (n_init, n_clusters, D).

    Sampling is by inverse CDF (searchsorted) with all uniforms drawn up front; torch.multinomial
    costs ~10x more per call at this size. If every point already coincides with a centre (more
    clusters than distinct points) the CDF is flat and index 0 is taken.
    """
    n = x.shape[0]
    one = x.new_ones(1)

    def distance_to(centres: Tensor) -> Tensor:
        # 1 - cos in one op; the factor 2 cancels in the sampling, and the clamp drops roundoff
        # (cos = 1 + ulp) that would make a CDF non-monotone
        return torch.addmm(one, centres, x.T, alpha=-1.0).clamp_min_(0.0)

    pick = torch.randint(n, (n_init,), generator=generator, device=x.device)
    uniforms = torch.rand(n_clusters - 1, n_init, 1, generator=generator, device=x.device, dtype=x.dtype)
    picks = [pick]
    nearest = distance_to(x[pick])  # (n_init, n): distance to the nearest chosen centre
    for u in uniforms:
        cdf = nearest.cumsum(-1)
        pick = torch.searchsorted(cdf, u * cdf[:, -1:]).squeeze(1)  # first cdf >= u * total; u < 1
        picks.append(pick)
        nearest = torch.minimum(nearest, distance_to(x[pick]))
    return x[torch.stack(picks, dim=1)]


def _cosines(x: Tensor, centroids: Tensor) -> Tensor:
    """x·c for every point and centroid as one flat GEMM: (n, D), (..., k, D) -> (n, ..., k).

    A broadcast batched matmul is slower here and, on a CPU shared with other processes, its
    per-batch thread synchronisation can stall for milliseconds."""
    dim = centroids.shape[-1]
    return (x @ centroids.reshape(-1, dim).T).view(x.shape[0], *centroids.shape[:-1])


def _lloyd_step(x: Tensor, centroids: Tensor, offsets: Tensor) -> Tensor:
    """One Riemannian Lloyd iteration for every restart: assign each point to its geodesically nearest
    centroid (max cosine), then move each centroid one fixed-point step toward its cluster's Karcher
    (Fréchet) mean, c <- normalise(Σ_i w_i x_i), w_i = θ_i / sin θ_i.

    The fixed point of that map is exactly the Karcher mean (Σ_i log_c(x_i) = Σ_i w_i (x_i - cos θ_i c)
    = 0); it is a Riemannian gradient step with a Newton-like step size, so it converges in a few
    iterations (Buss & Fillmore 2001) and, warm-started from the previous centroid, needs no inner loop.
    The cluster sums are one index_add (a dense one-hot matmul would cost k times more).
    Shapes: x (n, D), centroids (I, k, D), offsets = k * arange(I) -> (I, k, D).
    """
    n_init, k, dim = centroids.shape
    cos, labels = _cosines(x, centroids).max(dim=-1)  # (n, I)
    weighted = (x.unsqueeze(1) / _inverse_karcher_weight(cos).unsqueeze(-1)).view(-1, dim)  # (n*I, D)
    new = centroids.new_zeros(n_init * k, dim).index_add_(0, (labels + offsets).view(-1), weighted)
    norm = new.norm(dim=-1, keepdim=True)
    new = (new / norm).view(n_init, k, dim)
    # Empty clusters (and the measure-zero case of members that cancel out) have norm 0: move them to
    # the points farthest from their own centroid.
    if float(norm.min()) <= 1e-12:
        empty = norm.view(n_init, k) <= 1e-12
        farthest = cos.T.argsort(dim=1, stable=True)  # (I, n), least similar first
        rank = (empty.cumsum(-1) - 1).clamp_min(0) % x.shape[0]
        new = torch.where(empty.unsqueeze(-1), x[farthest.gather(1, rank)], new)
    return new


def _sq_distance_to_nearest(x: Tensor, centroids: Tensor) -> Tensor:
    """θ² from each point to its nearest centroid. acos(cos θ) has a relative error ~eps/θ² near 0,
    but θ² = acos(c)² has an absolute error of only ~2 eps, which is what a sum of squares needs.
    Shapes: x (n, D), centroids (..., k, D) -> (..., n)."""
    best = _cosines(x, centroids).amax(dim=-1).movedim(0, -1)  # (..., n)
    return torch.acos(best.clamp(-1.0, 1.0)).square()


def geodesic_inertia(x: Tensor, centroids: Tensor) -> Tensor:
    """Sum over points of the squared geodesic distance to the nearest centroid (what geomstats'
    `RiemannianKMeans.inertia_` reports). Shapes: x (n, D), centroids (k, D) -> scalar; both are
    normalised first. Computed in at least float32."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, centroids.dtype), torch.float32)
    return _sq_distance_to_nearest(_unit(x.to(dtype)), _unit(centroids.to(dtype))).sum()


@torch.no_grad()
def spherical_kmeans(
    x: Tensor, n_clusters: int, *, tol: float = 1e-3, max_iter: int = 100, n_init: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    """Riemannian k-means of the rows of `x` on the unit sphere; returns unit centroids (n_clusters, D).

    `n_init` k-means++ restarts run batched; iterations stop when every restart's centroids moved
    less than `tol` radians on average (geomstats' criterion), then the restart with the lowest
    geodesic inertia wins. Rows of `x` are normalised first. More clusters than distinct points is
    allowed: the surplus centroids duplicate points. Deterministic for a seeded `generator` (which must
    live on x's device). Computed and returned in float32 (float64 for float64 input).
    """
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (n, D) matrix, got shape {tuple(x.shape)}")
    if n_clusters < 1 or n_init < 1 or max_iter < 1:
        raise ValueError(f"n_clusters, n_init and max_iter must be >= 1, got {n_clusters}, {n_init}, {max_iter}")
    x = _unit(x.to(torch.promote_types(x.dtype, torch.float32)))
    centroids = _kmeans_pp(x, n_clusters, n_init, generator)
    offsets = n_clusters * torch.arange(n_init, device=x.device)  # restart i's clusters in a flat index
    for _ in range(max_iter):
        new = _lloyd_step(x, centroids, offsets)
        # chord |c' - c| = 2 sin(θ/2) equals the angle θ to 1e-5 relative at the scale of tol
        shift = (new - centroids).norm(dim=-1).mean(-1)  # (I,)
        centroids = new
        if float(shift.max()) < tol:
            break
    best = _sq_distance_to_nearest(x, centroids).sum(-1).argmin()
    return centroids[best]
