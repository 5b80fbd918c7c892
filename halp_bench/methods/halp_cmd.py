"""HaLP + CMD: CMD's three streams and distillation, plus HaLP's positives in every stream."""

from __future__ import annotations

from halp_bench.config import RunConfig
from halp_bench.methods.base import DataInfo
from halp_bench.methods.cmd import CMD
from halp_bench.methods.halp import HallucinatedPositives
from halp_bench.registry import register_method


@register_method("halp_cmd", "HaLP + CMD: hallucinated positives per stream on top of CMD")
class HaLPCMD(HallucinatedPositives, CMD):
    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.init_hallucination()
