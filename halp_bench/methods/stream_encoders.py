"""Which encoder the protocols evaluate: one stream (joint by default) or the ensemble of streams."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.datasets.clr_transforms import relative_to_joint
from halp_bench.datasets.modalities import MODALITIES, modality
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.skeleton import SkeletonLayout

STREAM_CHOICES = (*MODALITIES, "ensemble")


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


def eval_encoder(encoders: dict[str, Encoder], stream: str, layout: SkeletonLayout) -> Encoder:
    """The encoder for `eval.stream`; asking for a stream the method did not train is an error."""
    if stream not in STREAM_CHOICES:
        raise ConfigError(f"eval.stream '{stream}': choose one of {', '.join(STREAM_CHOICES)}")
    if stream == "ensemble":
        return EnsembleEncoder(encoders, layout) if len(encoders) > 1 else next(iter(encoders.values()))
    if stream not in encoders:
        raise ConfigError(f"eval.stream '{stream}': this method trains only the {', '.join(encoders)} stream(s)")
    return encoders[stream] if stream == "joint" else StreamEncoder(encoders[stream], stream, layout)
