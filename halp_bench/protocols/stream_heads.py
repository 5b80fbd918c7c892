"""`eval.linear_head=per_stream_mean`: one linear head per stream, the mean of their logits.

This is CrosSCLR's three-stream linear probe as its code trains it (CrosSCLR@792b70c:
net/crossclr_3views.py:28-43 builds three encoders, each with its own `fc = Linear(256, classes)`
(net/st_gcn.py:39); :194-195 returns the mean of their three logits for `view: 'all'`;
processor/linear_evaluation.py:22-30,40 draws every Linear N(0, 0.02) with bias 0).

`eval.stream=concat` (methods/stream_encoders.ConcatEncoder) gives the streams' features side by
side divided by their number S, so one linear head on it already computes the same function. The
training differs in the bias only: the single head has one bias b, the authors have S biases b_s
whose mean acts as b, and each b_s receives 1/S of the gradient b receives, so under SGD without
weight decay their effective bias moves at 1/S of the single head's rate. The weights move alike in
both. This head splits the concat feature into its S parts, multiplies each by S (undoing the
division, so that head s sees stream s's own feature, as in the authors' code) and averages the S
heads' logits: the authors' parameters, initialisation and gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.methods.stream_encoders import ConcatEncoder, RelativeEncoder
from halp_bench.protocols.classifier import new_head
from halp_bench.validation import PER_STREAM_MEAN


class PerStreamMeanHead(nn.Module):
    """S independent linear heads, one per part of a concat feature; the mean of their logits."""

    def __init__(self, stream_dims: Sequence[int], num_classes: int, std: float):
        super().__init__()
        self.stream_dims = tuple(stream_dims)
        self.heads = nn.ModuleList(new_head(dim, num_classes, std) for dim in self.stream_dims)

    def forward(self, concat: Tensor) -> Tensor:
        streams = len(self.stream_dims)
        parts = concat.split(self.stream_dims, dim=1)  # each part is a stream's feature divided by S
        return torch.stack([head(part * streams) for head, part in zip(self.heads, parts)]).mean(dim=0)


def concat_stream_dims(encoder: Encoder) -> tuple[int, ...] | None:
    """The feature sizes of the streams a concat encoder puts side by side (through the relative
    input of the ST-GCN family), or None for any other encoder or a single stream."""
    while isinstance(encoder, RelativeEncoder):
        encoder = encoder.encoder
    if not isinstance(encoder, ConcatEncoder) or len(encoder.streams) < 2:
        return None
    return tuple(stream.feature_dim for stream in encoder.streams.values())


def per_stream_head(encoder: Encoder, num_classes: int, std: float) -> PerStreamMeanHead:
    """The probe head of `eval.linear_head=per_stream_mean` for `encoder`, which must concatenate
    several streams (validation.check_grid refuses other cases before a run trains)."""
    dims = concat_stream_dims(encoder)
    if dims is None:
        raise ConfigError(
            f"eval.linear_head={PER_STREAM_MEAN}: needs the concatenated features of several streams "
            f"(eval.stream=concat on a multi-stream method); this encoder is {type(encoder).__name__}"
        )
    return PerStreamMeanHead(dims, num_classes, std)
