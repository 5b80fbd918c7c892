"""The untrained encoder: the reference row every self-supervised table needs."""

from __future__ import annotations

from halp_bench.config import RunConfig
from halp_bench.encoders import SequenceEncoder, build_encoder
from halp_bench.methods.base import DataInfo, Method
from halp_bench.methods.stream_encoders import eval_encoder
from halp_bench.registry import register_method


@register_method("random", "the randomly initialised encoder, not trained (reference row)")
class RandomInit(Method):
    pretrains = False

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.encoder_q = build_encoder(cfg.encoder, info.in_channels)

    def encoder_for_eval(self) -> SequenceEncoder:
        return eval_encoder({"joint": self.encoder_q}, self.cfg.eval.stream, self.info.layout)
