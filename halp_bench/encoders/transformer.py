"""MAMP's spatio-temporal transformer (model_mamp/transformer.py of MAMP; papers/mamp.md §1-2, §9).

Each token is one joint over `patch_frames` consecutive frames, embedded by a (patch_frames, 1)
convolution; learned, separable joint (`pos_embed`) and time (`temp_embed`) embeddings are added.
The persons are folded into the batch and never attend to each other; there is no CLS token. The
blocks are pre-norm (attention, then an MLP of ratio 4), a final LayerNorm follows, and the
feature is the mean over every token and person (an all-zero second person included, as the
authors pool).

The token-level hooks of the encoder contract (`tokens`, `run_blocks`, `pool_tokens`) let a masked
method embed every token, run the blocks on a kept subset per sample, and pool. Module names equal
the authors' state_dict keys, so their released encoders load without renaming (weights.py).
Attention goes through `torch.nn.functional.scaled_dot_product_attention` (`attention=sdpa`) or a
plain matmul-softmax (`attention=plain`, the reference the benchmark compares against).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.encoders.base import Encoder
from halp_bench.errors import ConfigError
from halp_bench.registry import register_encoder
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged


@dataclass
class TransformerSettings(EncoderSettings):
    """MAMP's encoder: `depth` blocks of width `dim`, `heads` heads, MLP ratio `mlp_ratio`, tokens of
    `patch_frames` frames x 1 joint. `drop_path` (stochastic depth, linearly rising over the blocks)
    is 0 in pretraining; the finetune protocol sets its own (finetune.drop_path).

    `cpu` preset: 2 blocks x 64, 4 heads (the paper size, 8 x 256, costs ~60x more per token)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"dim": 64, "depth": 2, "heads": 4}}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"attention": ("sdpa", "plain")}
    name: str = "transformer"
    dim: int = ranged(256, "[1, inf)")
    depth: int = ranged(8, "[1, inf)")
    heads: int = ranged(8, "[1, inf)")
    mlp_ratio: float = ranged(4.0, "(0, inf)")
    patch_frames: int = ranged(4, "[1, inf)")
    drop_path: float = ranged(0.0, "[0, 1)")
    attention: str = "sdpa"

    def describe(self) -> str:
        return f"{self.name} {self.depth}x{self.dim}"

    def check(self) -> None:
        super().check()
        if self.dim % self.heads:
            raise ConfigError(f"--set encoder.dim={self.dim}: must be a multiple of encoder.heads ({self.heads})")


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample with probability `rate` (training only)."""

    def __init__(self, rate: float = 0.0):
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection. `key_mask` (B, L) bool, True where a
    key may be attended: the masked equivalent of running on a subset of tokens."""

    def __init__(self, dim: int, heads: int, plain: bool = False):
        super().__init__()
        self.heads, self.plain = heads, plain
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        mask = key_mask[:, None, None, :] if key_mask is not None else None
        if self.plain:
            scores = (q @ k.transpose(-2, -1)) * (dim // self.heads) ** -0.5
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            out = scores.softmax(dim=-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (attention, MLP), each residual branch with stochastic depth."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float = 0.0, plain: bool = False):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, plain)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), key_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class JointsEmbed(nn.Module):
    """(N*M, C, T, V) -> (N*M, dim, T / patch_frames, V): one token per joint and `patch_frames` frames."""

    def __init__(self, channels: int, dim: int, patch_frames: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=(patch_frames, 1), stride=(patch_frames, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def init_transformer_weights(module: nn.Module) -> None:
    """The authors' init: xavier-uniform Linear weights with zero bias, LayerNorm (1, 0); the
    convolution keeps PyTorch's default."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Stochastic depth per block, rising linearly from 0 to `rate` (plain floats: no tensor, so the
    encoder builds on the meta device)."""
    return [rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]


def gather_tokens(tokens: Tensor, keep: Tensor) -> Tensor:
    """tokens (B, L, D), keep (B, K) indices -> (B, K, D): each sample's kept tokens."""
    return torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def scatter_tokens(subset: Tensor, keep: Tensor, length: int, fill: Tensor) -> Tensor:
    """subset (B, K, D) put back at positions `keep` (B, K) of a (B, length, D) sequence whose other
    positions hold `fill` (broadcast to (B, length, D), e.g. a mask token)."""
    full = fill.expand(subset.shape[0], length, subset.shape[-1]).clone().to(subset.dtype)
    return full.scatter(1, keep.unsqueeze(-1).expand(-1, -1, subset.shape[-1]), subset)


@register_encoder("transformer", "MAMP's spatio-temporal transformer: joint x 4-frame tokens, SDPA attention, mean pooling", settings=TransformerSettings)
class Transformer(Encoder):
    """forward(x) = pool_tokens(run_blocks(tokens(x)), M)."""

    settings: TransformerSettings

    def __init__(self, data: DataSpec, settings: TransformerSettings):
        super().__init__(data, settings)
        if data.frames % settings.patch_frames:
            raise ConfigError(f"encoder transformer: data.frames ({data.frames}) must be a multiple of encoder.patch_frames ({settings.patch_frames})")
        self.feature_dim = self.token_dim = settings.dim
        self.patch_frames = settings.patch_frames
        self.token_grid = (data.frames // settings.patch_frames, data.joints)
        self.joints_embed = JointsEmbed(data.channels, settings.dim, settings.patch_frames)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, data.joints, settings.dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, self.token_grid[0], 1, settings.dim))
        rates = drop_path_rates(settings.drop_path, settings.depth)
        plain = settings.attention == "plain"
        self.blocks = nn.ModuleList(Block(settings.dim, settings.heads, settings.mlp_ratio, rate, plain) for rate in rates)
        self.norm = nn.LayerNorm(settings.dim)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        self.apply(init_transformer_weights)

    def tokens(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N*M, L, D) embedded tokens with their positions, L = T/patch x V,
        time-major (token t*V + v)."""
        if x.dim() != 5:
            raise ConfigError(f"encoder input must be (N, C, T, V, M), got shape {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        folded = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        emb = self.joints_embed(folded).permute(0, 2, 3, 1)  # (NM, T', V, D)
        emb = emb + self.pos_embed + self.temp_embed
        return emb.reshape(n * m, -1, self.token_dim)

    def run_blocks(self, tokens: Tensor, keep: Tensor | None = None) -> Tensor:
        """The blocks and final norm on every token, or on each sample's kept ones: tokens (B, L, D),
        keep (B, K) indices -> (B, K, D) (or (B, L, D) without `keep`)."""
        x = tokens if keep is None else gather_tokens(tokens, keep)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def pool_tokens(self, tokens: Tensor, persons: int) -> Tensor:
        """(N*M, L, D) -> (N, D): the mean over tokens and persons."""
        return tokens.mean(dim=1).reshape(-1, persons, tokens.shape[-1]).mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool_tokens(self.run_blocks(self.tokens(x)), x.shape[-1])

    def layer_id(self, name: str) -> int:
        """Layer of a parameter for layer-wise lr decay (BEiT's rule, as MAMP's finetune): 0 for the
        embeddings, i + 1 for block i, depth + 1 for the final norm (and a head)."""
        if name.startswith(("joints_embed", "pos_embed", "temp_embed")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return len(self.blocks) + 1

    def set_drop_path(self, rate: float) -> None:
        """Stochastic depth for fine-tuning: rates rising linearly from 0 to `rate` over the blocks."""
        for block, value in zip(self.blocks, drop_path_rates(rate, len(self.blocks))):
            block.drop_path.rate = value
