"""The encoder interface every method and protocol relies on, and building one from its settings.

An encoder maps skeleton sequences (N, C, T, V, M) to a feature vector (N, feature_dim): the
pre-projection feature the protocols read (as the official kNN and linear evaluations do).
Projection heads belong to the methods that train with them.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.errors import ConfigError
from halp_bench.registry import ENCODERS
from halp_bench.skeleton import DataSpec


class Encoder(nn.Module):
    """Base class: built from the data's description and the encoder's registered settings.

    Subclasses set `feature_dim` and implement `forward`. A sequence encoder flattens each frame
    (`flatten_frames`); a graph encoder reads the joints and bones from `data.layout`.
    """

    settings_class: ClassVar[type[EncoderSettings]] = EncoderSettings
    feature_dim: int

    def __init__(self, data: DataSpec, settings: EncoderSettings):
        super().__init__()
        self.data, self.settings = data, settings

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, feature_dim)."""
        raise NotImplementedError

    # Optional hooks for methods that act on per-joint features before pooling (AimCLR's attention
    # drop). An encoder that has such features implements both, with forward = pool(feature_map(x), M).

    def feature_map(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N*M, feature_dim, T', V): the features before pooling."""
        raise ConfigError(self._no_feature_map())

    def pool(self, feature_map: Tensor, persons: int) -> Tensor:
        """(N*M, feature_dim, T', V) -> (N, feature_dim), as `forward` pools."""
        raise ConfigError(self._no_feature_map())

    # Optional token-level hooks for methods that act on tokens (MAMP's masking): an encoder that
    # has tokens implements all three, with forward = pool_tokens(run_blocks(tokens(x)), M).

    def tokens(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N*M, L, D): the tokens before the blocks, positions added."""
        raise ConfigError(self._missing_hook("tokens"))

    def run_blocks(self, tokens: Tensor, keep: Tensor | None = None) -> Tensor:
        """(N*M, L, D) and kept indices (N*M, K) per sample -> (N*M, K, D) (all L without `keep`)."""
        raise ConfigError(self._missing_hook("tokens"))

    def pool_tokens(self, tokens: Tensor, persons: int) -> Tensor:
        """(N*M, K, D) -> (N, D), as `forward` pools."""
        raise ConfigError(self._missing_hook("tokens"))

    def _missing_hook(self, hook: str) -> str:
        name = self.settings.name if hasattr(self, "settings") else type(self).__name__
        return f"encoder {name} has no {hook} hook ({', '.join(ENCODER_HOOKS[hook])}); use e.g. --set encoder.name=transformer"

    def _no_feature_map(self) -> str:
        name = self.settings.name if hasattr(self, "settings") else type(self).__name__  # wrappers (stream_encoders.py) have none
        return f"encoder {name} has no joint feature map; aimclr's attention drop needs an encoder with one, such as stgcn (--set encoder.name=stgcn)"


# The optional hooks a method may need (`Method.needs_hooks`), by name, and the functions that make each.
ENCODER_HOOKS: dict[str, tuple[str, ...]] = {"feature_map": ("feature_map", "pool"), "tokens": ("tokens", "run_blocks", "pool_tokens")}


def encoder_hooks(encoder_class: type) -> set[str]:
    """The optional hooks an encoder class implements: every function of the hook overridden."""
    return {hook for hook, functions in ENCODER_HOOKS.items() if all(getattr(encoder_class, f, None) is not getattr(Encoder, f) for f in functions)}


def build_encoder(data: DataSpec, settings: EncoderSettings) -> Encoder:
    """The registered encoder `settings.name`; an unknown name is an `UnknownNameError` listing the known ones."""
    return ENCODERS.get(settings.name)(data, settings)


def encoder_feature_dim(data: DataSpec, settings: EncoderSettings) -> int:
    """The feature size an encoder will have, without building its weights: it is built on the
    meta device, which allocates nothing and draws no random numbers."""
    with torch.device("meta"):
        return build_encoder(data, settings).feature_dim


def flatten_frames(x: Tensor, in_channels: int) -> Tensor:
    """(N, C, T, V, M) -> (N, T, V*C*M), feature index v*C*M + c*M + m as in the official code.

    The order matters only for importing official weights (the first layer's columns and the input
    BatchNorm are tied to it), so it follows `x.permute(0, 2, 3, 1, 4)` exactly.
    """
    if x.dim() != 5:
        raise ConfigError(f"encoder input must be (N, C, T, V, M), got shape {tuple(x.shape)}")
    n, c, t, v, m = x.shape
    if c * v * m != in_channels:
        raise ConfigError(f"encoder was built for {in_channels} channels per frame but the input (N, C, T, V, M) = {tuple(x.shape)} has C*V*M = {c * v * m}")
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)
