"""Encoders: the `Encoder` interface, `build_encoder`, the built-in CMD BiGRUs and ST-GCN.

Importing this package registers `bigru`, `bigru_official`, `stgcn` and `transformer` (halp_bench.plugins imports them too).
"""

from halp_bench.encoders.base import ENCODER_HOOKS, Encoder, build_encoder, encoder_feature_dim, encoder_hooks, flatten_frames
from halp_bench.encoders.bigru import BiGRU, BiGRUSettings, OfficialBiGRU
from halp_bench.encoders.stgcn import STGCN, STGCNSettings
from halp_bench.encoders.transformer import Transformer, TransformerSettings

__all__ = [
    "ENCODER_HOOKS",
    "STGCN",
    "BiGRU",
    "BiGRUSettings",
    "Encoder",
    "OfficialBiGRU",
    "STGCNSettings",
    "Transformer",
    "TransformerSettings",
    "build_encoder",
    "encoder_feature_dim",
    "encoder_hooks",
    "flatten_frames",
]
