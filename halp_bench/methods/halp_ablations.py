"""HaLP's ablations (paper, Table 5 and the lambda study), each overriding one hook of `halp`."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from halp_bench.hallucination import hallucinate_towards
from halp_bench.methods.halp import HaLP, PrototypeState
from halp_bench.registry import register_method


@register_method("halp_qk", "HaLP ablation: positives on the geodesic from z_k to z_q (paper: 77.92)")
class HaLPQueryKey(HaLP):
    """Targets are the query z_q instead of prototypes; the step is bounded so that the positive
    keeps P* as its nearest prototype among all N (the exact cell boundary)."""

    compared_to = "halp"
    family: ClassVar[str] = "ablations"
    table_order: ClassVar[int] = 1
    citation: ClassVar[str] = "Shah et al., CVPR 2023 (ablation)"

    def stream_positives(self, q: Tensor, k: Tensor, state: PrototypeState) -> tuple[Tensor, Tensor]:
        m = self.settings
        targets = q.unsqueeze(1).expand(-1, m.num_positives, -1)
        return hallucinate_towards(k, targets, state.prototypes, m.lam, t_sampling=m.t_sampling, boundary="cell", generator=state.generator(k.device))


@register_method("halp_zq", "HaLP ablation: z_q instead of z_k as the anchor (paper: 77.9)")
class HaLPQueryAnchor(HaLP):
    compared_to = "halp"
    family: ClassVar[str] = "ablations"
    table_order: ClassVar[int] = 2
    citation: ClassVar[str] = "Shah et al., CVPR 2023 (ablation)"

    def stream_positives(self, q: Tensor, k: Tensor, state: PrototypeState) -> tuple[Tensor, Tensor]:
        return super().stream_positives(q, q, state)


@register_method("halp_hardest", "HaLP ablation: only the hardest positive, t = t* - 0.01 (paper: 79.4)")
class HaLPHardest(HaLP):
    compared_to = "halp"
    family: ClassVar[str] = "ablations"
    table_order: ClassVar[int] = 0
    citation: ClassVar[str] = "Shah et al., CVPR 2023 (ablation)"
    t_sampling = "hardest"
