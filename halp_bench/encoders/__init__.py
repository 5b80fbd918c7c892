"""Encoders: the `Encoder` interface, `build_encoder`, the built-in CMD BiGRUs and ST-GCN.

Importing this package registers `bigru`, `bigru_official` and `stgcn` (halp_bench.plugins imports them too).
"""

from halp_bench.encoders.base import Encoder, build_encoder, encoder_feature_dim, flatten_frames
from halp_bench.encoders.bigru import BiGRU, BiGRUSettings, OfficialBiGRU
from halp_bench.encoders.stgcn import STGCN, STGCNSettings

__all__ = ["BiGRU", "BiGRUSettings", "Encoder", "OfficialBiGRU", "STGCN", "STGCNSettings", "build_encoder", "encoder_feature_dim", "flatten_frames"]
