"""HaLP + CMD: CMD's three streams and distillation, plus HaLP's positives in every stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from halp_bench.config import RunConfig
from halp_bench.methods.cmd import CMD, CMDSettings
from halp_bench.methods.halp import HallucinatedPositives, HaLPSettings
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec


@dataclass
class HaLPCMDSettings(CMDSettings, HaLPSettings):
    """CMD's settings and HaLP's, both presets' values included.

    No multi-modal HaLP script was published: under `official`, mu (2 on NTU), the refresh and the
    probe's lr 0.005 are those of HaLP's single-modality scripts, borrowed, not read from a script
    of this method."""


@register_method("halp_cmd", "HaLP + CMD: hallucinated positives per stream on top of CMD", settings=HaLPCMDSettings)
class HaLPCMD(HallucinatedPositives, CMD):
    family: ClassVar[str] = "paper"
    table_order: ClassVar[int] = 4
    citation: ClassVar[str] = "Shah et al., CVPR 2023"
    compared_to = "cmd"

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.init_hallucination()
