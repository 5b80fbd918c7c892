"""The paper's prototype fit, verbatim: geomstats' `RiemannianKMeans` (kept as the reference that
`spherical_kmeans` is benchmarked and tested against, and for exact-replication runs).

geomstats is imported lazily, inside the function: it takes ~1 s to import and, with its pytorch
backend, sets torch's default dtype to float64 at import time, which would silently turn every later
`torch.zeros(...)` of the training run into float64. We select the numpy backend when the user has not
chosen one, restore torch's default dtype right after the import, and (pytorch backend only) lend
geomstats its float64 default for the duration of the fit, which it needs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor


@contextmanager
def _torch_default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Set torch's default dtype inside the block (None: leave it) and always restore it."""
    saved = torch.get_default_dtype()
    try:
        if dtype is not None:
            torch.set_default_dtype(dtype)
        yield
    finally:
        torch.set_default_dtype(saved)


def _import_geomstats():
    if not os.environ.get("GEOMSTATS_BACKEND"):
        os.environ["GEOMSTATS_BACKEND"] = "numpy"
    with _torch_default_dtype(None):
        import geomstats.backend as gs
        from geomstats.geometry.hypersphere import Hypersphere
        from geomstats.learning.kmeans import RiemannianKMeans
    return gs, Hypersphere, RiemannianKMeans


def geomstats_kmeans(x: Tensor, n_clusters: int, *, tol: float = 1e-3, seed: int | None = None) -> Tensor:
    """Prototypes as the authors fit them: `RiemannianKMeans(Hypersphere, n_clusters, init="kmeans++",
    tol=1e-3)` with Fréchet means by gradient descent of initial step size 1.0 (official_code.md §6).

    geomstats 2.8 takes the space (not the metric, as the authors' ~2.5 did) and has no
    `init_step_size` argument; the step size is set on its mean estimator instead. We use
    Hypersphere(dim=D-1), the sphere the features live on (the authors' dim=128 was an off-by-one that
    only inner products made harmless). geomstats draws from Python's `random` and numpy's global RNG;
    with a `seed` both are seeded for the fit and restored afterwards, so callers' streams are untouched.

    Shapes: x (n, D) -> unit centroids (n_clusters, D), same dtype and device as x (fit in float64 on CPU).
    """
    gs, Hypersphere, RiemannianKMeans = _import_geomstats()
    data = x.detach().to("cpu", torch.float64).numpy()
    data = data / np.linalg.norm(data, axis=1, keepdims=True)
    kmeans = RiemannianKMeans(space=Hypersphere(dim=data.shape[1] - 1), n_clusters=n_clusters, init="kmeans++", tol=tol)
    kmeans.mean_estimator.set(init_step_size=1.0)
    saved = (random.getstate(), np.random.get_state())
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
    backend_dtype = gs.get_default_dtype()
    try:
        with _torch_default_dtype(backend_dtype if isinstance(backend_dtype, torch.dtype) else None):
            kmeans.fit(gs.array(data))
    finally:
        if seed is not None:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
    centres = torch.from_numpy(np.asarray(gs.to_numpy(kmeans.cluster_centers_), dtype=np.float64))
    return (centres / centres.norm(dim=-1, keepdim=True)).to(x.device, x.dtype)
