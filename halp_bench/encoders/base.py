"""The encoder interface every method and protocol relies on, and the registry lookup.

Methods pretrain `forward` (the L2-normalised projection); protocols read `features` (the
pre-projection vector, as the official kNN and linear evaluations do).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from halp_bench.config import EncoderConfig
from halp_bench.errors import ConfigError
from halp_bench.registry import ENCODERS


class SequenceEncoder(nn.Module):
    """Maps skeleton sequences (N, C, T, V, M) to a feature vector and a unit-norm embedding.

    `in_channels` is the size of one flattened frame, C * V * M (150 for NTU: 3 coordinates x 25
    joints x 2 persons), i.e. `SkeletonData.in_channels`. Subclasses build `self.head` (with
    `projection_head`) and implement `features`.
    """

    feature_dim: int
    embed_dim: int
    head: nn.Module

    def __init__(self, in_channels: int, cfg: EncoderConfig):
        super().__init__()
        self.in_channels = in_channels
        self.embed_dim = cfg.proj_dim

    def features(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, feature_dim), before the projection head."""
        raise NotImplementedError

    def project(self, feats: Tensor) -> Tensor:
        """(N, feature_dim) -> (N, embed_dim), L2-normalised (contrastive losses use cosines)."""
        return F.normalize(self.head(feats), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.features(x))


def projection_head(feature_dim: int, cfg: EncoderConfig) -> nn.Sequential:
    """The MoCo v2 MLP head of the official code: Linear-ReLU-Linear, no BN, PyTorch default init."""
    return nn.Sequential(
        nn.Linear(feature_dim, cfg.proj_hidden),
        nn.ReLU(inplace=True),
        nn.Linear(cfg.proj_hidden, cfg.proj_dim),
    )


def flatten_frames(x: Tensor, in_channels: int) -> Tensor:
    """(N, C, T, V, M) -> (N, T, V*C*M), feature index v*C*M + c*M + m as in the official code.

    The order matters only for importing official weights (the first layer's columns and the input
    BatchNorm are tied to it), so it follows `x.permute(0, 2, 3, 1, 4)` exactly.
    """
    if x.dim() != 5:
        raise ConfigError(f"encoder input must be (N, C, T, V, M), got shape {tuple(x.shape)}")
    n, c, t, v, m = x.shape
    if c * v * m != in_channels:
        raise ConfigError(
            f"encoder was built for {in_channels} channels per frame but the input (N, C, T, V, M) = "
            f"{tuple(x.shape)} has C*V*M = {c * v * m}"
        )
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)


def build_encoder(cfg: EncoderConfig, in_channels: int) -> SequenceEncoder:
    """The registered encoder `cfg.name`; an unknown name is an `UnknownNameError` listing the known ones."""
    return ENCODERS.get(cfg.name)(in_channels, cfg)
