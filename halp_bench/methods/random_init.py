"""The reference row: the encoder as MoCo initialises it, never trained."""

from __future__ import annotations

from typing import ClassVar

from halp_bench.config import RunConfig
from halp_bench.encoders import Encoder
from halp_bench.methods.base import Method
from halp_bench.methods.components import build_embedder
from halp_bench.methods.moco import ProjectionSettings
from halp_bench.methods.stream_encoders import eval_encoder
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec


@register_method("random", "the randomly initialised encoder, not trained (reference row)", settings=ProjectionSettings)
class RandomInit(Method):
    """Built exactly as MoCo builds its joint query encoder (its projection head is drawn too,
    though never used), so with the same seed this is the encoder MoCo starts from."""

    family: ClassVar[str] = "paper"
    table_order: ClassVar[int] = 0

    pretrains = False

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.encoder_q = build_embedder(data, cfg.encoder, cfg.method.proj_hidden, cfg.method.proj_dim)

    def encoder_for_eval(self) -> Encoder:
        return eval_encoder({"joint": self.encoder_q.encoder}, self.cfg.eval.stream, self.data.layout)
