"""AimCLR (Guo et al., AAAI 2022): SkeletonCLR plus an extremely augmented view, the
energy-based attention-guided drop (EADM), the D3M loss and nearest-neighbour mining (NNM)
(field_methods.md §6).

The loss of a batch is InfoNCE of the normal query against its key and the queue (from
`mining_epoch` on: the multi-positive NCE with the queue slots NNM mines) plus
`d3m_weight` x (D3M(extreme) + D3M(extreme + drop)); the extreme views get no InfoNCE of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from halp_bench.common.distributed import gather_keys
from halp_bench.config import RunConfig
from halp_bench.datasets.views.clr import NormalAugmentSettings, normal_view
from halp_bench.datasets.views.extreme import check_flip_layout, extreme_augment
from halp_bench.datasets.views.modalities import modality
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.methods.aimclr_losses import attention_drop, d3m_loss, moco_logits
from halp_bench.methods.base import Batch
from halp_bench.methods.components import full_precision, multi_positive_nce, nearest_neighbour_mask
from halp_bench.methods.moco import Streams
from halp_bench.methods.shuffle_bn import grouped
from halp_bench.methods.skeletonclr import SkeletonCLR, SkeletonCLRSettings
from halp_bench.registry import ENCODERS, register_method
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged


@dataclass
class AimCLRSettings(SkeletonCLRSettings):
    """EADM drops features whose attention is >= `keep_prob` (SimAM's `e_lambda`); NNM adds the
    union of the `topk` nearest queue slots of the normal, extreme and extreme+drop queries as
    positives once `mining_epoch` epochs are done (the official `epoch > 150` of 300, epochs
    counted from 1); `d3m_weight` weighs each D3M term. `cpu` preset: mining after 30 of 60 epochs."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"mining_epoch": 30}}
    keep_prob: float = ranged(0.7, "(0, 1]")
    e_lambda: float = ranged(1e-4, "(0, inf)")
    topk: int = ranged(1, "[1, inf)")
    mining_epoch: int = ranged(150, "[0, inf)")
    d3m_weight: float = ranged(0.5, "[0, inf)")

    def check(self) -> None:
        super().check()
        if not 0.0 < self.keep_prob <= 1.0:
            raise ConfigError(f"--set method.keep_prob={self.keep_prob}: must be in (0, 1]")
        if self.topk < 1:
            raise ConfigError(f"--set method.topk={self.topk}: must be at least 1")


@dataclass
class AimCLRAugmentSettings(NormalAugmentSettings):
    """The normal views plus the extreme ones (datasets/views/extreme.py): flip, rotation (main
    axis U(0, `rotate_main_degrees`), the others U(0, `rotate_other_degrees`)), noise, temporal
    blur (odd kernel, sigma U(min, max)) and axis mask, each with its probability.

    Paper by default; the official code's quirks as options, on in the `official` preset:
    `official_flip` swaps left and right joints without mirroring x, `official_blur` leaves the
    blur kernel unnormalised (it scales the sequence by up to ~5)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"official": {"official_flip": True, "official_blur": True}}
    flip_prob: float = ranged(0.5, "[0, 1]")
    official_flip: bool = False
    rotate_main_degrees: float = ranged(30.0, "[0, 180]")
    rotate_other_degrees: float = ranged(1.0, "[0, 180]")
    noise_prob: float = ranged(0.5, "[0, 1]")
    noise_std: float = ranged(0.01, "[0, inf)")
    blur_prob: float = ranged(0.5, "[0, 1]")
    blur_kernel: int = ranged(15, "[1, inf)")
    blur_sigma_min: float = ranged(0.1, "(0, inf)")
    blur_sigma_max: float = ranged(2.0, "(0, inf)")
    official_blur: bool = False
    axis_mask_prob: float = ranged(0.5, "[0, 1]")

    def check(self) -> None:
        super().check()
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ConfigError(f"--set augment.blur_kernel={self.blur_kernel}: must be a positive odd number (a centred kernel)")
        if not 0.0 < self.blur_sigma_min <= self.blur_sigma_max:
            raise ConfigError(f"augment.blur_sigma_min={self.blur_sigma_min}, blur_sigma_max={self.blur_sigma_max}: need 0 < min <= max")


@register_method(
    "aimclr",
    "AimCLR: SkeletonCLR + extreme views, attention-guided drop, D3M and neighbour mining (AAAI'22)",
    settings=AimCLRSettings,
    augment=AimCLRAugmentSettings,
)
class AimCLR(SkeletonCLR):
    """One query encoder runs the normal query and, in one more backbone pass, the extreme view,
    pooled with and without EADM; the key encoder (EMA first) runs the normal key."""

    settings: AimCLRSettings
    compared_to: ClassVar[str | None] = "skeletonclr"
    family: ClassVar[str] = "field"
    table_order: ClassVar[int] = 3
    citation: ClassVar[str] = "Guo et al., AAAI 2022"
    # the attention drop needs per-joint features: ST-GCN in every preset (paper/official add SkeletonCLR's recipe)
    # NNM from half the cpu ST-GCN recipe's 150 epochs, as 150 of 300
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {"*": {"encoder.name": "stgcn"}, "cpu@stgcn": {"method.mining_epoch": 75}}
    needs_hooks: ClassVar[tuple[str, ...]] = ("feature_map",)

    def __init__(self, cfg: RunConfig, data: DataSpec):
        self.check_data(cfg, data)
        super().__init__(cfg, data)

    @classmethod
    def check_data(cls, cfg: RunConfig, data: DataSpec) -> None:
        """The attention drop needs a joint feature map, the flip a left-right mirror, the rotation 3-D joints."""
        if ENCODERS.get(cfg.encoder.name).feature_map is Encoder.feature_map:
            raise ConfigError(
                f"aimclr's attention drop needs an encoder with a joint feature map (feature_map and pool), "
                f"which encoder '{cfg.encoder.name}' has not; use e.g. --set encoder.name=stgcn"
            )
        if cfg.augment.flip_prob > 0:
            check_flip_layout(data.layout)
        if data.channels != 3:
            raise ConfigError(f"aimclr's extreme rotation needs 3-D joints, but the data has {data.channels} coordinates per joint")

    def make_views(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        """(extreme, normal query, normal key), the official call order, drawn from `generator`
        in that order: the extreme view's normal crop and shear, then its extreme augmentations,
        then the query's view, then the key's."""
        frames, augment = self.cfg.data.frames, self.cfg.augment
        center = self.data.layout.partition_center
        extreme = extreme_augment(normal_view(x, lengths, frames, augment, generator, center), self.data.layout, augment, generator)
        return extreme, normal_view(x, lengths, frames, augment, generator, center), normal_view(x, lengths, frames, augment, generator, center)

    def embed_extreme(self, view: Tensor) -> tuple[Streams, Streams]:
        """Per stream, from one backbone pass of the extreme view: the normalised embeddings of its
        feature map pooled as is and after EADM, through the same head."""
        s, persons = self.settings, view.shape[-1]
        plain, dropped = {}, {}
        for name in self.streams:
            embedder = self.encoders_q[name]
            features = grouped(embedder.encoder.feature_map, modality(view, name, self.data.layout), s.shuffle_bn_groups)
            with full_precision(features):  # the attention threshold on float32 energies
                features_dropped = attention_drop(features.float(), s.keep_prob, s.e_lambda)
            plain[name] = F.normalize(embedder.head(embedder.encoder.pool(features, persons)), dim=1)
            dropped[name] = F.normalize(embedder.head(embedder.encoder.pool(features_dropped, persons)), dim=1)
        return plain, dropped

    def mining(self, epoch: int) -> bool:
        """NNM is on once `mining_epoch` epochs are done (0-based `epoch`; the official 1-based `epoch > mining_epoch`)."""
        return epoch >= self.settings.mining_epoch

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        extreme, view_q, view_k = batch.views
        q, k = self.embed(view_q, view_k, batch)
        e, ed = self.embed_extreme(extreme)
        with full_precision(view_q):
            as_float = lambda streams: {name: v.float() for name, v in streams.items()}
            return self.aimclr_losses(as_float(q), as_float(k), as_float(e), as_float(ed), batch)

    def aimclr_losses(self, q: Streams, k: Streams, e: Streams, ed: Streams, batch: Batch) -> dict[str, Tensor]:
        """Every term from the embeddings, against the queue as read before this batch's keys
        (all ranks' under DDP) are enqueued."""
        s, losses = self.settings, {}
        for i, name in enumerate(self.streams):
            queue = self.queue.read(i)
            logits, logits_e, logits_ed = (moco_logits(v[name], k[name], queue, s.temperature) for v in (q, e, ed))
            if self.mining(batch.epoch):
                mined = nearest_neighbour_mask([z[:, 1:].detach() for z in (logits, logits_e, logits_ed)], s.topk)
                losses[f"contrastive_{name}"] = multi_positive_nce(logits, mined)
            else:
                losses[f"contrastive_{name}"] = F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))
            losses[f"d3m_{name}"] = s.d3m_weight * (d3m_loss(logits, logits_e) + d3m_loss(logits, logits_ed))
        self.queue.push(*(gather_keys(k[name]) for name in self.streams))
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses
