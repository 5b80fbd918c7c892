"""Which encoder the protocols evaluate: one stream (joint by default), the ensemble of streams
(mean of normalised features) or their concatenation (a linear head on it is the mean of one
head per stream: CrosSCLR's three-stream probe)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.datasets.views.clr import relative_to_joint
from halp_bench.datasets.views.modalities import MODALITIES, modality
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.skeleton import SkeletonLayout

STREAM_CHOICES = (*MODALITIES, "ensemble", "concat")
MULTI_STREAM = ("ensemble", "concat")


class StreamEncoder(Encoder):
    """An encoder of one modality that takes the joint stream and derives its input from it."""

    def __init__(self, encoder: Encoder, stream: str, layout: SkeletonLayout):
        nn.Module.__init__(self)
        self.encoder, self.stream, self.layout = encoder, stream, layout
        self.feature_dim = encoder.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(modality(x, self.stream, self.layout))


class EnsembleEncoder(Encoder):
    """Mean of the streams' L2-normalised features (kNN and linear heads read this mean)."""

    def __init__(self, encoders: dict[str, Encoder], layout: SkeletonLayout):
        nn.Module.__init__(self)
        self.streams = nn.ModuleDict({s: StreamEncoder(e, s, layout) for s, e in encoders.items()})
        self.feature_dim = next(iter(encoders.values())).feature_dim

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([F.normalize(e(x), dim=1) for e in self.streams.values()]).mean(dim=0)


class RelativeEncoder(Encoder):
    """An encoder that sees every frame relative to one joint, as the ST-GCN family's data is
    (`clr_transforms.relative_to_joint`): what the protocols evaluate for methods trained that way."""

    def __init__(self, encoder: Encoder, joint: int):
        nn.Module.__init__(self)
        self.encoder, self.joint = encoder, joint
        self.feature_dim = encoder.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(relative_to_joint(x, self.joint))


class ConcatEncoder(Encoder):
    """The streams' features side by side, divided by their number: a linear head on it computes
    (1/S) sum_s W_s f_s + b, the function of CrosSCLR's three-stream probe (the mean of S per-stream
    heads' logits, trained jointly). Not the same training: CrosSCLR has S biases b_s whose mean acts
    as b, so under SGD (no weight decay) its effective bias moves at 1/S of this one's rate (this
    bias learns S times faster), and its heads are drawn N(0, 0.02) each (`eval.head_std`).
    `eval.linear_head=per_stream_mean` trains it their way (protocols/stream_heads.py)."""

    def __init__(self, encoders: dict[str, Encoder], layout: SkeletonLayout):
        nn.Module.__init__(self)
        self.streams = nn.ModuleDict({s: StreamEncoder(e, s, layout) for s, e in encoders.items()})
        self.feature_dim = sum(e.feature_dim for e in encoders.values())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([e(x) for e in self.streams.values()], dim=1) / len(self.streams)


def eval_encoder(encoders: dict[str, Encoder], stream: str, layout: SkeletonLayout) -> Encoder:
    """The encoder for `eval.stream`; asking for a stream the method did not train is an error."""
    if stream not in STREAM_CHOICES:
        raise ConfigError(f"eval.stream '{stream}': choose one of {', '.join(STREAM_CHOICES)}")
    if stream in MULTI_STREAM:
        if len(encoders) == 1:
            return next(iter(encoders.values()))
        return EnsembleEncoder(encoders, layout) if stream == "ensemble" else ConcatEncoder(encoders, layout)
    if stream not in encoders:
        raise ConfigError(f"eval.stream '{stream}': this method trains only the {', '.join(encoders)} stream(s)")
    return encoders[stream] if stream == "joint" else StreamEncoder(encoders[stream], stream, layout)
