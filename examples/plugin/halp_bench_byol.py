"""An external halp-bench method in one file: BYOL (Grill et al., NeurIPS 2020) for skeletons.

No queue and no negatives: an online network (encoder, projector, predictor) predicts the
projection that an EMA target network (encoder, projector) gives to the other view, in both
directions. The target's momentum follows BYOL's cosine schedule from `base_momentum` to
`final_momentum`, driven by the training progress the engine passes in every `Batch`. Its own
settings (`--set method.*`), its own optimiser defaults (AdamW, cosine learning rate; `--set
pretrain.*` still wins) and the standard two augmented views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.config import MethodSettings, RunConfig
from halp_bench.encoders import Encoder, build_encoder
from halp_bench.methods.base import Batch, Method
from halp_bench.methods.components import make_key_encoder
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged


@dataclass
class BYOLSettings(MethodSettings):
    """Projector and predictor sizes (BYOL: 4096 hidden, 256 out) and the target's momentum."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"mlp_hidden": 256, "proj_dim": 64, "base_momentum": 0.99}}
    mlp_hidden: int = ranged(4096, "[1, inf)")  # each setting declares what it allows (docs/checks.md)
    proj_dim: int = ranged(256, "[1, inf)")
    base_momentum: float = ranged(0.996, "[0, 1]")
    final_momentum: float = ranged(1.0, "[0, 1]")


def mlp(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    """BYOL's projector and predictor: Linear-BN-ReLU-Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))


def target_momentum(settings: BYOLSettings, progress: float) -> float:
    """tau = final - (final - base) * (cos(pi * progress) + 1) / 2: base at the start, final at the end."""
    return settings.final_momentum - (settings.final_momentum - settings.base_momentum) * (math.cos(math.pi * progress) + 1) / 2


def regression_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """2 - 2 cos(p, z), batch mean (BYOL's normalised mean squared error)."""
    return (2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=1)).mean()


@register_method("byol", "BYOL: online network predicts an EMA target's projection, no negatives (example plugin)", settings=BYOLSettings)
class BYOL(Method):
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "*": {"pretrain.optimizer": "adamw", "pretrain.lr": 1e-3, "pretrain.weight_decay": 1e-6, "pretrain.schedule": "cosine"},
        "paper": {"pretrain.warmup_epochs": 10},
    }
    settings: BYOLSettings

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.settings = s = cfg.method
        self.encoder = build_encoder(data, cfg.encoder)
        self.projector = mlp(self.encoder.feature_dim, s.mlp_hidden, s.proj_dim)
        self.predictor = mlp(s.proj_dim, s.mlp_hidden, s.proj_dim)
        self.target_encoder = make_key_encoder(self.encoder)
        self.target_projector = make_key_encoder(self.projector)

    def momentum_pairs(self, batch: Batch) -> list[tuple[nn.Module, nn.Module]]:
        """The engine moves the targets towards the previous step's online weights."""
        return [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]

    def target_momentum(self, batch: Batch) -> float:
        return target_momentum(self.settings, batch.progress)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        view_a, view_b = batch.views
        both = torch.cat([view_a, view_b])  # one pass per network: BatchNorm sees both views, as in BYOL
        predictions = self.predictor(self.projector(self.encoder(both))).float()
        with torch.no_grad():
            targets = self.target_projector(self.target_encoder(both)).float()
        p_a, p_b = predictions.chunk(2)
        z_a, z_b = targets.chunk(2)
        loss = regression_loss(p_a, z_b) + regression_loss(p_b, z_a)
        return {"regression": loss, "loss": loss}

    def encoder_for_eval(self) -> Encoder:
        return self.encoder
