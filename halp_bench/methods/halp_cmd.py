"""HaLP + CMD: CMD's three streams and distillation, plus HaLP's positives in every stream."""

from __future__ import annotations

from typing import ClassVar

from dataclasses import dataclass

from halp_bench.config import RunConfig
from halp_bench.methods.cmd import CMD, CMDSettings
from halp_bench.methods.halp import HallucinatedPositives, HaLPSettings
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec


@dataclass
class HaLPCMDSettings(CMDSettings, HaLPSettings):
    """CMD's settings and HaLP's, both presets' values included."""


@register_method("halp_cmd", "HaLP + CMD: hallucinated positives per stream on top of CMD", settings=HaLPCMDSettings)
class HaLPCMD(HallucinatedPositives, CMD):
    family: ClassVar[str] = "paper"
    table_order: ClassVar[int] = 4
    citation: ClassVar[str] = "Shah et al., CVPR 2023"
    compared_to = "cmd"

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.init_hallucination()
