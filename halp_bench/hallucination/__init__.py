"""HaLP's math as pure, batched tensor functions (papers/halp.md, "Hallucinating positives").

No module state: randomness comes from explicit `torch.Generator`s, device and dtype follow the
inputs (computed in at least float32). geomstats (`geomstats_kmeans`) is imported only when called.
"""

from halp_bench.hallucination.geomstats_backend import geomstats_kmeans
from halp_bench.hallucination.kmeans import geodesic_inertia, spherical_kmeans
from halp_bench.hallucination.positives import BOUNDARIES, HARDEST_MARGIN, T_SAMPLINGS, hallucinate, hallucinate_towards, sample_steps
from halp_bench.hallucination.sphere import cell_exit_step, clustered_unit_vectors, hardest_step, nearest_prototype, rank_filter, slerp

__all__ = [
    "BOUNDARIES",
    "HARDEST_MARGIN",
    "T_SAMPLINGS",
    "cell_exit_step",
    "clustered_unit_vectors",
    "geodesic_inertia",
    "geomstats_kmeans",
    "hallucinate",
    "hallucinate_towards",
    "hardest_step",
    "nearest_prototype",
    "rank_filter",
    "sample_steps",
    "slerp",
    "spherical_kmeans",
]
