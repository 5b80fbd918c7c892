"""Encoders: the `Encoder` interface, `build_encoder`, and the built-in CMD BiGRUs.

Importing this package registers `bigru` and `bigru_official` (halp_bench.plugins imports them too).
"""

from halp_bench.encoders.base import Encoder, build_encoder, encoder_feature_dim, flatten_frames
from halp_bench.encoders.bigru import BiGRU, BiGRUSettings, OfficialBiGRU

__all__ = ["BiGRU", "BiGRUSettings", "Encoder", "OfficialBiGRU", "build_encoder", "encoder_feature_dim", "flatten_frames"]
