"""MoCo v2: the paper's baseline (joint stream) and the base that CMD and HaLP build on."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from halp_bench.config import RunConfig
from halp_bench.datasets.modalities import modality
from halp_bench.encoders import SequenceEncoder, build_encoder
from halp_bench.engine.distributed import gather_keys
from halp_bench.engine.precision import full_precision
from halp_bench.methods.base import Batch, DataInfo, Method
from halp_bench.methods.components import KeyQueue, ema_update, info_nce_from_similarities, make_key_encoder
from halp_bench.methods.stream_encoders import eval_encoder
from halp_bench.registry import register_method

Streams = dict[str, Tensor]


@register_method("moco", "MoCo v2, joint stream: EMA key encoder, key queue, InfoNCE (the paper's baseline)")
class MoCo(Method):
    """One query encoder, EMA key encoder (updated before the keys are computed) and queue bank per
    stream in `streams`; the queue is read before the batch is enqueued.

    Subclasses change `streams` (CMD), add terms that need the pre-push queue (`queue_losses`) or
    terms computed after the push (`extra_losses`, e.g. HaLP), and copy nothing else.
    """

    streams: tuple[str, ...] = ("joint",)

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        self.encoders_q = nn.ModuleDict({s: build_encoder(cfg.encoder, info.in_channels) for s in self.streams})
        self.encoders_k = nn.ModuleDict({s: make_key_encoder(self.encoders_q[s]) for s in self.streams})
        embed_dim = self.encoders_q[self.streams[0]].embed_dim
        generator = torch.Generator().manual_seed(cfg.seed)
        self.queue = KeyQueue(cfg.method.queue_size, embed_dim, banks=len(self.streams), generator=generator)

    @torch.no_grad()
    def update_key_encoders(self) -> None:
        """EMA step of every key encoder; MoCo does it before the keys are computed."""
        for s in self.streams:
            ema_update(self.encoders_k[s], self.encoders_q[s], self.cfg.method.momentum)

    def embed(self, batch: Batch) -> tuple[Streams, Streams]:
        """Per stream: normalised query embeddings (with grad) and keys (no grad)."""
        q = {s: self.encoders_q[s](modality(batch.view_q, s, self.info.layout)) for s in self.streams}
        with torch.no_grad():
            k = {s: self.encoders_k[s](modality(batch.view_k, s, self.info.layout)) for s in self.streams}
        return q, k

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        self.update_key_encoders()
        q, k = self.embed(batch)  # in the engine's precision (autocast)
        with full_precision(batch.view_q):  # losses, queue and hallucination math in float32
            return self.contrastive_losses(
                {s: v.float() for s, v in q.items()}, {s: v.float() for s, v in k.items()}, batch
            )

    def contrastive_losses(self, q: Streams, k: Streams, batch: Batch) -> dict[str, Tensor]:
        """Every term from the embeddings; the batch's keys (all ranks' under DDP) are enqueued."""
        queues = {s: self.queue.read(i) for i, s in enumerate(self.streams)}
        student = {s: q[s] @ queues[s].t() for s in self.streams}  # (B, K) cosines, computed once
        temperature = self.cfg.method.temperature
        losses = {
            f"contrastive_{s}": info_nce_from_similarities((q[s] * k[s]).sum(dim=1), student[s], temperature)
            for s in self.streams
        }
        losses.update(self.queue_losses(k, queues, student))
        self.queue.push(*(gather_keys(k[s]) for s in self.streams))
        losses.update(self.extra_losses(q, k, batch))
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses

    def queue_losses(self, k: Streams, queues: Streams, student: Streams) -> dict[str, Tensor]:
        """Hook for terms on the queue as read before this batch's push (CMD's distillation)."""
        return {}

    def extra_losses(self, q: Streams, k: Streams, batch: Batch) -> dict[str, Tensor]:
        """Hook for (already weighted) terms computed after the batch is enqueued (HaLP)."""
        return {}

    def encoder_for_eval(self) -> SequenceEncoder:
        return eval_encoder(dict(self.encoders_q.items()), self.cfg.eval.stream, self.info.layout)
