"""Sequence encoders: the `SequenceEncoder` interface, `build_encoder`, and the built-in CMD BiGRUs.

Importing this package registers `bigru` and `bigru_official` (halp_bench.plugins imports them too).
"""

from halp_bench.encoders.base import SequenceEncoder, build_encoder, flatten_frames, projection_head
from halp_bench.encoders.bigru import BiGRU, OfficialBiGRU

__all__ = ["BiGRU", "OfficialBiGRU", "SequenceEncoder", "build_encoder", "flatten_frames", "projection_head"]
