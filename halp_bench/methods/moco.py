"""MoCo v2 on the joint stream: the paper's baseline and the base HaLP builds on."""

from __future__ import annotations

import torch
from torch import Tensor

from halp_bench.config import RunConfig
from halp_bench.encoders import SequenceEncoder, build_encoder
from halp_bench.methods.base import Batch, DataInfo, Method
from halp_bench.methods.components import KeyQueue, ema_update, info_nce, make_key_encoder
from halp_bench.registry import register_method


@register_method("moco", "MoCo v2, joint stream: EMA key encoder, 16384-key queue, InfoNCE (baseline)")
class MoCo(Method):
    """Query encoder, EMA key encoder (updated before the keys are computed) and a key queue that
    is read before the batch is enqueued. Subclasses add terms through `extra_losses`."""

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.encoder_q = build_encoder(cfg.encoder, info.in_channels)
        self.encoder_k = make_key_encoder(self.encoder_q)
        generator = torch.Generator().manual_seed(cfg.seed)
        self.queue = KeyQueue(cfg.method.queue_size, self.encoder_q.embed_dim, generator=generator)

    def embed(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(q, k): normalised query embeddings (with grad) and key embeddings (no grad)."""
        q = self.encoder_q(batch.view_q)
        with torch.no_grad():
            ema_update(self.encoder_k, self.encoder_q, self.cfg.method.momentum)
            k = self.encoder_k(batch.view_k)
        return q, k

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        q, k = self.embed(batch)
        losses = {"contrastive": info_nce(q, k, self.queue.read(), self.cfg.method.temperature)}
        self.queue.push(k)
        losses.update(self.extra_losses(q, k, batch))
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses

    def extra_losses(self, q: Tensor, k: Tensor, batch: Batch) -> dict[str, Tensor]:
        """Hook for additional (already weighted) loss terms, computed after the batch is enqueued."""
        return {}

    def encoder_for_eval(self) -> SequenceEncoder:
        return self.encoder_q
