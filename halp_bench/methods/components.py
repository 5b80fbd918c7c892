"""Building blocks shared by contrastive methods: encoder + projection head, the key queue, the
EMA update, InfoNCE and float32 islands under autocast.

State changes are explicit named steps (`queue.push`, `ema_update`); the loss is a pure function.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.encoders import Encoder, build_encoder, encoder_feature_dim
from halp_bench.skeleton import DataSpec


def projection_head(feature_dim: int, hidden: int, out: int) -> nn.Sequential:
    """The MoCo v2 MLP head: Linear-ReLU-Linear, no BN, PyTorch's default init (`init_head` gives
    each family's code its own)."""
    return nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))


HEAD_INITS = ("default", "stgcn", "cmd")


def init_head(head: nn.Module, how: str) -> None:
    """Re-draw a projection head as an authors' code leaves it (`method.head_init`):
    - `default`: PyTorch's default, kept as built (the papers say nothing);
    - `stgcn`: the ST-GCN family's `weights_init` over the whole model: every Linear N(0, 0.02), bias 0;
    - `cmd`: CMD's and HaLP's `weights_init_gru` runs on the encoder's original `fc` before the MLP
      wraps it, so the last Linear is Xavier-uniform (bias as built) and the first keeps PyTorch's default.
    """
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if how == "stgcn":
        for layer in linears:
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)
    elif how == "cmd" and linears:
        nn.init.xavier_uniform_(linears[-1].weight)


class Embedder(nn.Module):
    """An encoder and a projection head: x (N, C, T, V, M) -> unit-norm embedding (N, out)."""

    def __init__(self, encoder: Encoder, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.head(self.encoder(x)), dim=1)


def build_embedder(data: DataSpec, encoder: EncoderSettings, proj_hidden: int, proj_dim: int) -> Embedder:
    """The encoder and its MLP head. The head is drawn from the random generator before the
    encoder, the order of earlier versions (where the head lived inside the encoder), so that the
    same seed gives the same initial weights and the stored results reproduce."""
    head = projection_head(encoder_feature_dim(data, encoder), proj_hidden, proj_dim)
    return Embedder(build_encoder(data, encoder), head)


def full_precision(like: Tensor) -> AbstractContextManager[Any]:
    """Turn autocast off on `like`'s device inside the block (inputs must be cast to float32 there):
    losses and queue similarities of bf16 cosines divided by a 0.07 temperature would move logits
    by ~0.1."""
    return torch.autocast(like.device.type, enabled=False)


class KeyQueue(nn.Module):
    """FIFO queue of normalised keys, one bank per stream, all banks sharing one pointer.

    With several banks (CMD's joint/motion/bone) slot i holds the same sample in every bank.
    Initialised with random unit vectors, as in MoCo. Buffers, so state_dict checkpoints it.
    """

    def __init__(self, size: int, dim: int, banks: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        init = torch.randn(banks, size, dim, generator=generator)
        self.register_buffer("keys", F.normalize(init, dim=-1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))  # real keys pushed so far

    @property
    def size(self) -> int:
        return self.keys.shape[1]

    def read(self, bank: int = 0) -> Tensor:
        """The current queue contents (K, D) of one bank, as a snapshot (safe to use after a push)."""
        return self.keys[bank].clone()

    @torch.no_grad()
    def push(self, *keys: Tensor) -> None:
        """Enqueue one (B, D) batch per bank, overwriting the oldest slots (wraps around)."""
        if len(keys) != self.keys.shape[0]:
            raise ValueError(f"push needs {self.keys.shape[0]} key batches, got {len(keys)}")
        b = keys[0].shape[0]
        slots = (self.ptr + torch.arange(b, device=self.keys.device)) % self.size
        for bank, k in enumerate(keys):
            self.keys[bank, slots] = k.detach().to(self.keys.dtype)
        self.ptr.copy_((self.ptr + b) % self.size)
        self.filled.add_(b)

    def recent(self, count: int, bank: int = 0) -> Tensor:
        """The `count` most recently pushed keys (oldest first) of one bank."""
        count = min(count, self.size)
        slots = (self.ptr - count + torch.arange(count, device=self.keys.device)) % self.size
        return self.keys[bank, slots]


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """target <- m * target + (1 - m) * source, parameter by parameter (MoCo's key encoder)."""
    target_params = list(target.parameters())
    source_params = [p.detach() for p in source.parameters()]
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, source_params, alpha=1.0 - momentum)


def info_nce(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """MoCo's InfoNCE: -log(exp(q.k/T) / (exp(q.k/T) + sum_i exp(q.queue_i/T))), batch mean.

    q, k: (B, D) normalised; queue: (K, D) normalised negatives (read before this batch is pushed).
    """
    return info_nce_from_similarities((q * k).sum(dim=1), q @ queue.t(), temperature)


def info_nce_from_similarities(positive: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """InfoNCE from precomputed cosines, positive (B,) and negatives (B, K), so that methods which
    reuse q @ queue.T (CMD's student similarities) compute that (B, K) product only once."""
    logits = torch.cat([positive.unsqueeze(1), negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(positive), dtype=torch.long, device=positive.device))


def make_key_encoder(query_encoder: nn.Module) -> nn.Module:
    """A frozen copy that only `ema_update` changes."""
    key_encoder = copy.deepcopy(query_encoder)
    for p in key_encoder.parameters():
        p.requires_grad_(False)
    return key_encoder


def nearest_neighbour_mask(similarities: Sequence[Tensor], topk: int) -> Tensor:
    """(N, K) bool: the union over `similarities` (each (N, K) cosines to the queue) of each row's
    top-k queue slots. CrosSCLR mines from the partner stream's query, AimCLR from the normal,
    extreme and extreme+drop queries."""
    mask = torch.zeros_like(similarities[0], dtype=torch.bool)
    for sims in similarities:
        mask.scatter_(1, sims.topk(min(topk, sims.shape[1]), dim=1).indices, True)
    return mask


def multi_positive_nce(logits: Tensor, queue_positives: Tensor) -> Tensor:
    """-sum(mask * log_softmax(logits)) / sum(mask), batch mean, where mask = [1, queue_positives]:
    the key (index 0) and the mined slots of the blocks after it are all positives."""
    mask = torch.cat([torch.ones_like(queue_positives[:, :1]), queue_positives], dim=1).to(logits.dtype)
    return (-(mask * F.log_softmax(logits, dim=1)).sum(dim=1) / mask.sum(dim=1)).mean()
