"""MoCo v2: the paper's baseline (joint stream) and the base that CMD and HaLP build on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.common.distributed import gather_keys
from halp_bench.config import MethodSettings, RunConfig, added
from halp_bench.datasets.views.modalities import modality
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.methods.base import Batch, Method
from halp_bench.methods.components import HEAD_INITS, KeyQueue, build_embedder, full_precision, info_nce_from_similarities, init_head, make_key_encoder
from halp_bench.methods.shuffle_bn import grouped, has_batchnorm, shuffled
from halp_bench.methods.stream_encoders import eval_encoder
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged

Streams = dict[str, Tensor]


@dataclass
class ProjectionSettings(MethodSettings):
    """The MLP projection head (feature -> proj_hidden -> proj_dim). `cpu` preset: 256 -> 64."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"proj_hidden": 256, "proj_dim": 64}, "official": {"head_init": "cmd"}}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"head_init": HEAD_INITS}
    proj_hidden: int = ranged(2048, "[1, inf)")
    proj_dim: int = ranged(128, "[1, inf)")
    head_init: str = added("default")  # default | stgcn | cmd: the projection head as each authors' code draws it (components.init_head)


@dataclass
class MoCoSettings(ProjectionSettings):
    """MoCo v2: key queue, EMA key encoder, InfoNCE temperature.

    `cpu` preset: queue 1024 and key momentum 0.99 (with a few hundred steps a 0.999 key encoder
    barely leaves its random initialisation; measured, docs/presets.md)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"queue_size": 1024, "momentum": 0.99}}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"head_init": HEAD_INITS, "stream": ("joint", "motion", "bone")}
    queue_size: int = ranged(16384, "[1, inf)")
    momentum: float = ranged(0.999, "[0, 1]")
    temperature: float = ranged(0.07, "(0, inf)")
    # the stream a single-stream method pretrains on (SkeletonCLR's and AimCLR's `--view`); the
    # three-stream rows fuse separately pretrained streams (`halp-bench ensemble`)
    stream: str = added("joint")
    # MoCo's shuffle BN in one process (methods/shuffle_bn.py): BatchNorm statistics per group of the
    # batch, the keys' samples shuffled across groups; 1 = one BatchNorm batch, as the field's code
    shuffle_bn_groups: int = ranged(1, "[1, inf)", neutral=True)


@register_method("moco", "MoCo v2, joint stream: EMA key encoder, key queue, InfoNCE (the paper's baseline)", settings=MoCoSettings)
class MoCo(Method):
    """One query encoder with its head, an EMA key copy (updated before the keys are computed) and
    a queue bank per stream in `streams`; the queue is read before the batch is enqueued.

    Subclasses change `streams` (CMD), add terms that need the pre-push queue (`queue_losses`) or
    terms computed after the push (`extra_losses`, e.g. HaLP), and copy nothing else.
    """

    family: ClassVar[str] = "paper"
    table_order: ClassVar[int] = 1
    citation: ClassVar[str] = "Chen et al., arXiv 2020 (MoCo v2); He et al., CVPR 2020"

    streams: tuple[str, ...] = ("joint",)
    settings: MoCoSettings
    # the authors' single-modality MoCo baseline is HaLP's code: HaLP's probe learning rates
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {"official": {"linear.lr": 0.005, "data.pipeline": "agcn"}, "official:pku": {"linear.lr": 0.001}}

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.settings = cfg.method
        s = self.settings
        if s.stream != "joint":
            if len(self.streams) > 1:
                raise ConfigError(
                    f"--set method.stream={s.stream}: {type(self).__name__} trains the {', '.join(self.streams)} "
                    "streams together; method.stream is for single-stream methods (eval.stream picks what is evaluated)"
                )
            self.streams = (s.stream,)
        self.encoders_q = nn.ModuleDict({name: build_embedder(data, cfg.encoder, s.proj_hidden, s.proj_dim) for name in self.streams})
        for embedder in self.encoders_q.values():
            init_head(embedder.head, s.head_init)
        self.encoders_k = nn.ModuleDict({name: make_key_encoder(self.encoders_q[name]) for name in self.streams})
        generator = torch.Generator().manual_seed(cfg.seed)
        self.queue = KeyQueue(s.queue_size, s.proj_dim, banks=len(self.streams), generator=generator)
        if s.shuffle_bn_groups > 1:
            self.check_shuffle_bn(cfg)

    def check_shuffle_bn(self, cfg: RunConfig) -> None:
        """Shuffle BN needs BatchNorm layers, statistics per process, and 2 or more samples per group."""
        groups = self.settings.shuffle_bn_groups
        where = f"--set method.shuffle_bn_groups={groups}"
        if not any(has_batchnorm(e) for e in self.encoders_q.values()):
            raise ConfigError(f"{where}: encoder '{cfg.encoder.name}' has no BatchNorm layer, so shuffle BN would change nothing; leave it at 1")
        if cfg.sync_batchnorm:
            raise ConfigError(f"{where}: sync_batchnorm normalises over the global batch, which leaves no groups to shuffle across; use one of the two")
        batch = cfg.pretrain.batch_size
        if batch < 2 * groups:
            raise ConfigError(f"{where}: a batch of {batch} gives groups of fewer than 2 samples; use at most {batch // 2} groups")

    def momentum_pairs(self, batch: Batch) -> list[tuple[nn.Module, nn.Module]]:
        """Every stream's key encoder follows its query encoder, before the keys are computed."""
        return [(self.encoders_q[s], self.encoders_k[s]) for s in self.streams]

    def target_momentum(self, batch: Batch) -> float:
        return self.settings.momentum

    def embed(self, view_q: Tensor, view_k: Tensor, batch: Batch | None = None) -> tuple[Streams, Streams]:
        """Per stream: normalised query embeddings of `view_q` (with grad) and keys of `view_k` (no
        grad); under shuffle BN the keys' order is drawn from `batch`'s generator."""
        layout, groups = self.data.layout, self.settings.shuffle_bn_groups
        if groups > 1 and batch is None:
            raise ConfigError(f"{type(self).__name__}.embed: method.shuffle_bn_groups={groups} needs the batch (embed(view_q, view_k, batch))")
        q = {s: grouped(self.encoders_q[s], modality(view_q, s, layout), groups) for s in self.streams}
        with torch.no_grad():
            keys = lambda s, x: shuffled(self.encoders_k[s], x, groups, batch.generator()) if groups > 1 else self.encoders_k[s](x)
            k = {s: keys(s, modality(view_k, s, layout)) for s in self.streams}
        return q, k

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        view_q, view_k = batch.views
        q, k = self.embed(view_q, view_k, batch)  # in the engine's precision (autocast)
        with full_precision(view_q):  # losses, queue and hallucination math in float32
            return self.contrastive_losses({s: v.float() for s, v in q.items()}, {s: v.float() for s, v in k.items()}, batch)

    def contrastive_losses(self, q: Streams, k: Streams, batch: Batch) -> dict[str, Tensor]:
        """Every term from the embeddings; the batch's keys (all ranks' under DDP) are enqueued."""
        queues = {s: self.queue.read(i) for i, s in enumerate(self.streams)}
        student = {s: q[s] @ queues[s].t() for s in self.streams}  # (B, K) cosines, computed once
        temperature = self.settings.temperature
        losses = {f"contrastive_{s}": info_nce_from_similarities((q[s] * k[s]).sum(dim=1), student[s], temperature) for s in self.streams}
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

    def encoder_for_eval(self) -> Encoder:
        """The stream `eval.stream` names; a single-stream method's own stream when that is the default (joint)."""
        stream = self.cfg.eval.stream
        if len(self.streams) == 1 and stream == "joint":
            stream = self.streams[0]
        return eval_encoder({s: e.encoder for s, e in self.encoders_q.items()}, stream, self.data.layout)
