"""The ST-GCN encoder of SkeletonCLR, CrosSCLR and AimCLR (their net/st_gcn.py; papers/field_methods.md §3).

Ten spatial-temporal blocks over the layout's `spatial_partition` graph, widths scaled by
`hidden_channels` (16 in those papers, a quarter of the original ST-GCN) and `hidden_dim` (256, the
feature). Module names equal the official state_dict keys (`data_bn`, `st_gcn_networks.{i}.gcn.conv`,
`.tcn.{0,2,3}`, `.residual.{0,1}`, `edge_importance.{i}`, buffer `A`), so an official encoder's weights
load once its prefix is stripped. The official `fc` is not here: projection heads belong to the methods,
and the protocols read the pooled `hidden_dim` feature.

Two official behaviours kept as they are: the persons are folded into the batch and averaged at the
end *including* all-zero (absent) persons, and `data_bn` normalises the V-major (v*C + c) channels
with statistics shared by all persons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.encoders.base import Encoder
from halp_bench.encoders.graph import spatial_partition
from halp_bench.errors import ConfigError
from halp_bench.registry import register_encoder
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged

TEMPORAL_KERNEL = 9


@dataclass
class STGCNSettings(EncoderSettings):
    """ST-GCN as the skeleton-SSL papers configure it: blocks of `hidden_channels` x (1, 1, 1, 1, 2, 2,
    2, 4, 4) channels then `hidden_dim` (the feature), `dropout` in blocks 2-10 (active in pretraining),
    learnable `edge_importance` masks.

    `cpu` preset h4/64 (70k parameters): ten blocks over every joint and frame cost far more on a CPU
    than the cpu BiGRU (1x128): about 12.5x per step at batch 64, 16 frames, one thread
    (benchmarks/bench_encoder.py). It learns slowly, and the ST-GCN family's methods bring their own
    cpu recipe for it (SkeletonCLR's `cpu@stgcn` run_defaults: 150 epochs, no lr step;
    docs/pipelines.md "A cpu-size ST-GCN recipe", with every recipe measured)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"hidden_channels": 4, "hidden_dim": 64}}
    name: str = "stgcn"
    hidden_channels: int = ranged(16, "[1, inf)")
    hidden_dim: int = ranged(256, "[1, inf)")
    dropout: float = ranged(0.5, "[0, 1)")
    edge_importance: bool = True

    def describe(self) -> str:
        return f"{self.name} h{self.hidden_channels}/{self.hidden_dim}"


def weights_init(module: nn.Module) -> None:
    """The official `weights_init`: conv and linear weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class GraphConv(nn.Module):
    """The official `ConvTemporalGraphical`: a 1x1 conv to K groups of `out` channels, then
    y[n, c, t, w] = sum_k sum_v x_k[n, c, t, v] * A[k, v, w]."""

    def __init__(self, in_channels: int, out_channels: int, partitions: int):
        super().__init__()
        self.partitions = partitions
        self.conv = nn.Conv2d(in_channels, out_channels * partitions, kernel_size=1)

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        x = self.conv(x)
        n, kc, t, v = x.shape
        return torch.einsum("nkctv,kvw->nctw", x.view(n, self.partitions, kc // self.partitions, t, v), a)


class Block(nn.Module):
    """The official `st_gcn` block: ReLU(tcn(gcn(x, A)) + residual(x)), tcn = BN-ReLU-Conv(9x1, stride)-BN-Dropout.
    The residual is none (block 1), the identity when the shape is kept, else a strided 1x1 conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, partitions: int, stride: int, dropout: float, residual: bool):
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (TEMPORAL_KERNEL, 1), (stride, 1), ((TEMPORAL_KERNEL - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        self.has_residual = residual
        if residual and (in_channels != out_channels or stride != 1):
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)), nn.BatchNorm2d(out_channels))
        else:
            self.residual = nn.Identity()

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        out = self.tcn(self.gcn(x, a))
        return F.relu(out + self.residual(x) if self.has_residual else out)


def block_plan(settings: STGCNSettings) -> list[tuple[int, int, float]]:
    """(out channels, stride, dropout) of the ten blocks; block 1 gets no dropout (the official `kwargs0`)."""
    h = settings.hidden_channels
    widths = [h, h, h, h, 2 * h, 2 * h, 2 * h, 4 * h, 4 * h, settings.hidden_dim]
    strides = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    return [(w, s, 0.0 if i == 0 else settings.dropout) for i, (w, s) in enumerate(zip(widths, strides))]


@register_encoder("stgcn", "ST-GCN of SkeletonCLR/CrosSCLR/AimCLR (spatial graph partition); feature = hidden_dim", settings=STGCNSettings)
class STGCN(Encoder):
    """ST-GCN over any layout, persons M and channels C; `feature_map` + `pool` = `forward`, split so a
    method can act on the joint features before pooling (AimCLR's attention drop)."""

    def __init__(self, data: DataSpec, settings: STGCNSettings):
        super().__init__(data, settings)
        if data.joints != data.layout.num_joints:
            raise ConfigError(f"stgcn: the data has {data.joints} joints but its layout {data.layout.name} has {data.layout.num_joints}")
        self.register_buffer("A", spatial_partition(data.layout))
        partitions = self.A.shape[0]
        self.data_bn = nn.BatchNorm1d(data.channels * data.joints)
        blocks, width = [], data.channels
        for i, (out, stride, dropout) in enumerate(block_plan(settings)):
            blocks.append(Block(width, out, partitions, stride, dropout, residual=i > 0))
            width = out
        self.st_gcn_networks = nn.ModuleList(blocks)
        if settings.edge_importance:
            self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones_like(self.A)) for _ in blocks)
        self.feature_dim = settings.hidden_dim
        self.apply(weights_init)

    def feature_map(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> the last block's output (N*M, hidden_dim, T', V), persons folded into the batch."""
        if x.dim() != 5 or x.shape[1] * x.shape[3] != self.data_bn.num_features or x.shape[3] != self.A.shape[1]:
            raise ConfigError(
                f"stgcn was built for (N, C, T, V, M) with C*V = {self.data_bn.num_features} and V = {self.A.shape[1]}, got shape {tuple(x.shape)}"
            )
        n, c, t, v, m = x.shape
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t))  # channels v*C + c, shared by the persons
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i, block in enumerate(self.st_gcn_networks):
            x = block(x, self.A * self.edge_importance[i] if self.settings.edge_importance else self.A)
        return x

    def pool(self, feature_map: Tensor, persons: int) -> Tensor:
        """(N*M, F, T', V) -> (N, F): mean over (T', V), then over the persons, absent (all-zero) ones included."""
        pooled = feature_map.mean(dim=(2, 3))
        return pooled.view(-1, persons, pooled.shape[1]).mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.feature_map(x), x.shape[-1])
