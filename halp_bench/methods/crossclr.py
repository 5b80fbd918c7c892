"""CrosSCLR (Li et al., CVPR 2021): joint, motion and bone MoCo, then cross-view consistent knowledge
mining (field_methods.md §5): each stream also takes as positives the queue entries its partner
streams find most similar. `crossclr` is the paper's ST-GCN model and recipe; `crossclr_b` the same
objective on the BiGRU family's encoder, views and recipe ("CrosSCLR-B" in the CMD and HaLP tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.common.distributed import gather_keys
from halp_bench.config import RunConfig
from halp_bench.errors import ConfigError
from halp_bench.methods.base import Batch
from halp_bench.methods.components import make_key_encoder, multi_positive_nce, nearest_neighbour_mask
from halp_bench.methods.moco import MoCo, MoCoSettings, Streams
from halp_bench.methods.skeletonclr import SkeletonCLR, SkeletonCLRSettings
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged


@dataclass
class CrossViewSettings:
    """Cross-view mining, mixed into a MoCo settings class. From the 0-based epoch `cross_epoch`
    on (the code's 1-based `epoch > cross_epoch`) each stream's loss counts, besides its own key,
    the `topk` queue slots each partner stream ranks highest; `context` adds the block of products
    of the two streams' queue similarities. `cpu` preset: mining from epoch 30 (of 60).

    Two behaviours of the official code, off by default (the paper's description), on in the
    `official` preset of `crossclr` (the code that produced the published numbers):
    `shared_head`: the motion and bone heads are Linear-ReLU followed by the joint stream's head
    (the same modules, so three layers and a shared tail); `motion_only_ema`: in the mining phase
    only the motion key encoder (and through it the shared tail) follows its query encoder."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"cross_epoch": 30}}
    topk: int = ranged(1, "[1, inf)")
    cross_epoch: int = ranged(150, "[0, inf)")
    context: bool = True
    shared_head: bool = False
    motion_only_ema: bool = False

    def check(self) -> None:
        if self.topk < 1:
            raise ConfigError(f"--set method.topk={self.topk}: expected at least 1 mined positive")
        if self.cross_epoch < 0:
            raise ConfigError(f"--set method.cross_epoch={self.cross_epoch}: expected an epoch >= 0")
        super().check()  # type: ignore[misc]  # the MoCo settings class it is mixed into


def mined_infonce(positive: Tensor, negatives: Tensor, partner_negatives: Tensor, topk: int, temperature: float, context: bool) -> Tensor:
    """Multi-positive InfoNCE of one stream a mined by its partner b, batch mean: logits
    [q_a.k_a, q_a.queue_a, (q_a.queue_a) * (q_b.queue_b) if context] / T; positives = the key and,
    in each queue block, b's top-k slots. positive (B,), negatives and partner_negatives (B, K)."""
    mined = nearest_neighbour_mask([partner_negatives], topk)
    blocks = [positive.unsqueeze(1), negatives, *([negatives * partner_negatives] if context else [])]
    return multi_positive_nce(torch.cat(blocks, dim=1) / temperature, torch.cat([mined] * (2 if context else 1), dim=1))


def cross_view_losses(positives: Streams, negatives: Streams, topk: int, temperature: float, context: bool) -> Streams:
    """Per stream: its mined InfoNCE averaged over its partner streams."""
    losses = {}
    for a in positives:
        partners = [b for b in positives if b != a]
        losses[a] = torch.stack([mined_infonce(positives[a], negatives[a], negatives[b], topk, temperature, context) for b in partners]).mean()
    return losses


class CrossViewMining(MoCo):
    """Three MoCo streams (one queue bank each, one shared pointer) whose losses switch to cross-view
    mining at `cross_epoch`; the registered classes below add the encoder family's views and recipe."""

    streams = ("joint", "motion", "bone")
    settings: Any  # a MoCo settings class with CrossViewSettings mixed in

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        if self.settings.shared_head:
            self.share_heads()

    def share_heads(self) -> None:
        """The official code's heads: motion's and bone's are Linear(F, F)-ReLU followed by the joint
        stream's head module itself, query and key alike. A key's first layer is a copy of its
        query's, or its own draw under SkeletonCLR's `independent_key_init`."""
        independent = getattr(self.settings, "independent_key_init", False)
        for s in self.streams[1:]:
            width = self.encoders_q[s].encoder.feature_dim
            first = nn.Linear(width, width)
            key_first = make_key_encoder(nn.Linear(width, width) if independent else first)
            self.encoders_q[s].head = nn.Sequential(first, nn.ReLU(inplace=True), self.encoders_q["joint"].head)
            self.encoders_k[s].head = nn.Sequential(key_first, nn.ReLU(inplace=True), self.encoders_k["joint"].head)

    def mining(self, batch: Batch) -> bool:
        """Whether this batch is in the mining phase: epoch (1-based) > cross_epoch."""
        return batch.epoch + 1 > self.settings.cross_epoch

    def momentum_pairs(self, batch: Batch) -> list[tuple[nn.Module, nn.Module]]:
        """`motion_only_ema`: in the mining phase only the motion key encoder follows (official code)."""
        if self.settings.motion_only_ema and self.mining(batch):
            return [(self.encoders_q["motion"], self.encoders_k["motion"])]
        return super().momentum_pairs(batch)

    def contrastive_losses(self, q: Streams, k: Streams, batch: Batch) -> dict[str, Tensor]:
        if not self.mining(batch):
            return super().contrastive_losses(q, k, batch)
        s = self.settings
        queues = {name: self.queue.read(i) for i, name in enumerate(self.streams)}
        positives = {name: (q[name] * k[name]).sum(dim=1) for name in self.streams}
        negatives = {name: q[name] @ queues[name].t() for name in self.streams}
        losses = {f"mined_{name}": v for name, v in cross_view_losses(positives, negatives, s.topk, s.temperature, s.context).items()}
        self.queue.push(*(gather_keys(k[name]) for name in self.streams))
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses


@dataclass
class CrosSCLRSettings(CrossViewSettings, SkeletonCLRSettings):
    """CrosSCLR's settings: SkeletonCLR's MoCo (queue 32768, head 256 -> 256 -> 128) plus the mining.
    `official`: the code's shared heads, motion-only EMA and independent key initialisation."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"official": {"shared_head": True, "motion_only_ema": True}}


@register_method("crossclr", "CrosSCLR: 3-stream SkeletonCLR with cross-view consistent knowledge mining (CVPR'21)", settings=CrosSCLRSettings)
class CrosSCLR(CrossViewMining, SkeletonCLR):
    """On SkeletonCLR's normal views and ST-GCN recipe; its published numbers probe the three
    streams together (logits of one head per stream averaged): `eval.stream=concat` under its recipe,
    with one head per stream under `official` (`eval.linear_head=per_stream_mean`: their code's three
    biases, whose mean moves at a third of the single head's rate; protocols/stream_heads.py)."""

    compared_to: ClassVar[str | None] = "skeletonclr"
    family: ClassVar[str] = "field"
    table_order: ClassVar[int] = 1
    citation: ClassVar[str] = "Li et al., CVPR 2021"
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {"eval.stream": "concat"},
        "official": {"eval.stream": "concat", "eval.linear_head": "per_stream_mean"},
        "cpu@stgcn": {"method.cross_epoch": 75},  # half the cpu ST-GCN recipe's epochs, as 150 of 300
    }


@dataclass
class CrosSCLRBSettings(CrossViewSettings, MoCoSettings):
    """CrosSCLR-B: MoCo's BiGRU-family settings (queue 16384, head 2048 -> 128) plus the mining,
    which starts halfway through the 451 epochs as CrosSCLR's does through its 300 (no code or
    schedule for CrosSCLR-B is published; field_methods.md §5.6). Its `official` preset keeps the
    paper's behaviour: the CrosSCLR code's quirks belong to that code, not to this re-build."""

    cross_epoch: int = ranged(225, "[0, inf)")


@register_method("crossclr_b", "CrosSCLR-B: CrosSCLR's mining on the BiGRU with CMD's views and recipe", settings=CrosSCLRBSettings)
class CrosSCLRB(CrossViewMining):
    """On the BiGRU family's standard views and recipe (the paper preset's, as moco and cmd)."""

    compared_to: ClassVar[str | None] = "moco"
    family: ClassVar[str] = "field"
    table_order: ClassVar[int] = 2
    citation: ClassVar[str] = "Mao et al., ECCV 2022 (CrosSCLR-B, their re-build of Li et al., CVPR 2021)"
    in_default_grid: ClassVar[bool] = False  # the field's rows: by name or `--suite field`
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {"official": {"linear.lr": 0.1}}  # CMD's probe script
