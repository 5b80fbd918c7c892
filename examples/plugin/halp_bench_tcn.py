"""An external halp-bench encoder in one file: a small temporal convolution network.

Each person is encoded on its own (persons folded into the batch, as ST-GCN does) from its joints'
coordinates stacked as channels, through `layers` blocks of 1-D convolution over time with
BatchNorm and ReLU; the feature is the mean over frames, then over persons. It reads the joints,
coordinates and persons from the data's description, so any layout works (NTU's 25 joints x 2
persons, Kinect's 20 x 1, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.encoders import Encoder
from halp_bench.registry import register_encoder
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged


@dataclass
class TCNSettings(EncoderSettings):
    """Width, depth and temporal kernel of the convolutions; feature = channels."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"channels": 64, "layers": 2}}
    channels: int = ranged(256, "[1, inf)")
    layers: int = ranged(4, "[1, inf)")
    kernel_size: int = ranged(9, "[1, inf)")

    def describe(self) -> str:
        return f"{self.name} {self.layers}x{self.channels} k{self.kernel_size}"


@register_encoder("tcn", "temporal convolutions per person over stacked joint coordinates (example plugin)", settings=TCNSettings)
class TemporalConvEncoder(Encoder):
    def __init__(self, data: DataSpec, settings: TCNSettings):
        super().__init__(data, settings)
        width, pad = settings.channels, settings.kernel_size // 2
        blocks: list[nn.Module] = [nn.BatchNorm1d(data.channels * data.joints)]
        for layer in range(settings.layers):
            in_channels = data.channels * data.joints if layer == 0 else width
            blocks += [nn.Conv1d(in_channels, width, settings.kernel_size, padding=pad), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = width

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        per_person = x.permute(0, 4, 1, 3, 2).reshape(n * m, c * v, t)  # (N*M, C*V, T)
        feats = self.blocks(per_person).mean(dim=2)  # (N*M, channels)
        return feats.view(n, m, -1).mean(dim=1)
