"""MAMP (Mao et al., ICCV 2023): masked motion prediction on a transformer's tokens, and the
`mae_coords` ablation it is compared against (papers/mamp.md §1, §5, §6).

90 % of each person-sequence's tokens are masked, drawn by motion-aware Gumbel top-k (tokens that
move more are masked more often, odds at most e^(1/tau) apart); the encoder runs on the visible
ones only, a light decoder fills the masked positions with a learned mask token and predicts each
token's frame-level motion (x[t+1] - x[t]) normalised per token; the loss is the MSE on the masked
tokens. The method needs the encoder's token hooks (`tokens`, `run_blocks`, `pool_tokens`), so it
works with any encoder that has them (the `transformer`, a plugin's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.config import MethodSettings, RunConfig, is_pku
from halp_bench.encoders import Encoder, build_encoder
from halp_bench.encoders.transformer import Block, init_transformer_weights, scatter_tokens
from halp_bench.methods import masking
from halp_bench.methods.base import Batch, Method
from halp_bench.methods.mamp_views import FirstFrameTranslated, MAMPViewSettings, mamp_view
from halp_bench.registry import register_method
from halp_bench.skeleton import DataSpec
from halp_bench.validation import ranged


@dataclass
class MAMPSettings(MethodSettings):
    """Masking ratio, tau of the motion-aware odds (0.8 NTU-60/PKU, 0.75 NTU-120), how the visible
    count is rounded (`round`: 75 of 750; `floor`: the authors' 74, under `official`), and the
    decoder (width, depth 3 on NTU-60 and 5 on NTU-120/PKU, heads). `cpu`: a 1 x 64 decoder."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"decoder_dim": 64, "decoder_depth": 1, "decoder_heads": 4}, "official": {"kept_rounding": "floor"}}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"kept_rounding": ("round", "floor")}
    mask_ratio: float = ranged(0.9, "[0, 1)")
    tau: float = ranged(0.8, "(0, inf)")
    kept_rounding: str = "round"
    decoder_dim: int = ranged(256, "[1, inf)")
    decoder_depth: int = ranged(3, "[1, inf)")
    decoder_heads: int = ranged(8, "[1, inf)")
    normalise_target: bool = True


class MaskedDecoder(nn.Module):
    """Visible latents -> a prediction of `out` values for every token: a linear embedding, the mask
    token at the masked positions, learned joint and time embeddings, blocks, norm, linear head."""

    def __init__(self, token_dim: int, grid: tuple[int, int], s: MAMPSettings, out: int):
        super().__init__()
        self.grid = grid
        self.embed = nn.Linear(token_dim, s.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, s.decoder_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, grid[1], s.decoder_dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, grid[0], 1, s.decoder_dim))
        self.blocks = nn.ModuleList(Block(s.decoder_dim, s.decoder_heads, 4.0) for _ in range(s.decoder_depth))
        self.norm = nn.LayerNorm(s.decoder_dim)
        self.pred = nn.Linear(s.decoder_dim, out)
        for p in (self.mask_token, self.pos_embed, self.temp_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.apply(init_transformer_weights)

    def forward(self, latent: Tensor, kept: Tensor) -> Tensor:
        """latent (B, K, D) at positions kept (B, K) -> (B, L, out)."""
        frames, joints = self.grid
        x = scatter_tokens(self.embed(latent), kept, frames * joints, self.mask_token)
        x = (x.reshape(-1, frames, joints, x.shape[-1]) + self.pos_embed + self.temp_embed).flatten(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))


# The authors' pretraining recipe (AdamW 0.9/0.95, wd 0.05, lr 1e-3 cosine to 5e-4 after 20 warm-up
# epochs, 400 epochs, batch 128, 120-frame clips); the cpu preset keeps its epochs and batch.
_ADAMW = {
    "pretrain.optimizer": "adamw",
    "pretrain.betas": (0.9, 0.95),
    "pretrain.weight_decay": 0.05,
    "pretrain.lr": 1e-3,
    "pretrain.schedule": "cosine",
    "pretrain.min_lr": 5e-4,
}
_PAPER = {"pretrain.epochs": 400, "pretrain.warmup_epochs": 20, "pretrain.batch_size": 128, "data.frames": 120}
# MAMP's fine-tuning recipe (finetune protocol, its MLP head on the tokens) and linear probe (BatchNorm
# head, SGD 0.1 cosine), both on training crops rotated by U(-0.3, 0.3) rad per axis; the cpu preset
# keeps its own epochs, batches and a 1-epoch warm-up, the paper's lengths and batches come with paper/official
_RECIPE = {
    "finetune.optimizer": "adamw",
    "finetune.betas": (0.9, 0.999),
    "finetune.lr": 3e-4,
    "finetune.min_lr": 1e-5,
    "finetune.schedule": "cosine",
    "finetune.weight_decay": 0.05,
    "finetune.layer_decay": 0.8,
    "finetune.label_smoothing": 0.1,
    "finetune.drop_path": 0.3,
    "finetune.head": "mamp_mlp",
    "linear.lr": 0.1,
    "linear.schedule": "cosine",
    "linear.weight_decay": 0.0,
    "eval.linear_head": "batchnorm_linear",
    "eval.train_rotation": 0.3,
}
_FINETUNE = {**_RECIPE, "finetune.warmup_epochs": 5, "finetune.epochs": 100, "finetune.batch_size": 48, "linear.epochs": 100, "linear.batch_size": 256}


@register_method(
    "mamp", "MAMP: masked motion prediction on transformer tokens, motion-aware masking (ICCV'23)", settings=MAMPSettings, augment=MAMPViewSettings
)
class MAMP(Method):
    """The encoder (with token hooks) and a masked decoder; one view per batch."""

    settings: MAMPSettings
    needs_hooks: ClassVar[tuple[str, ...]] = ("tokens",)
    compared_to: ClassVar[str | None] = "moco"
    family: ClassVar[str] = "field"
    table_order: ClassVar[int] = 11
    citation: ClassVar[str] = "Mao et al., ICCV 2023"
    data_pipeline: ClassVar[str] = "mamp"  # translation by the first frame's mid-spine joint, 120 frames
    in_default_grid: ClassVar[bool] = False
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "*": {"encoder.name": "transformer", **_ADAMW},
        "cpu": {"pretrain.warmup_epochs": 5, **_RECIPE, "finetune.warmup_epochs": 1},
        "paper": {**_PAPER, **_FINETUNE},
        "official": {**_PAPER, **_FINETUNE},
    }

    @classmethod
    def defaults_for(cls, preset: str, dataset: str = "", encoder: str = "") -> dict[str, Any]:
        """Per dataset: tau 0.75 on NTU-120; a 5-block decoder on NTU-120 and PKU (3 on NTU-60)."""
        values = super().defaults_for(preset, dataset, encoder)
        ntu120 = dataset.replace("\\", "/").split("/")[-1].lower().startswith("ntu120")
        if ntu120:
            values["method.tau"] = 0.75
        if (ntu120 or is_pku(dataset)) and preset != "cpu":
            values["method.decoder_depth"] = 5
        return values

    def __init__(self, cfg: RunConfig, data: DataSpec):
        super().__init__(cfg, data)
        self.settings = cfg.method
        self.encoder = build_encoder(data, cfg.encoder)
        self.patch_frames = self.encoder.patch_frames
        self.decoder = MaskedDecoder(self.encoder.token_dim, self.encoder.token_grid, self.settings, self.patch_frames * data.channels)

    def make_views(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        return (mamp_view(x, lengths, self.cfg.data.frames, self.cfg.augment, generator),)

    def choose_kept(self, patches: Tensor, keep: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Hook: which tokens stay visible (MAMP: motion-aware)."""
        return masking.motion_aware_kept(patches, self.data.joints, self.settings.tau, keep, generator)

    def target(self, x: Tensor) -> Tensor:
        """Hook: what is predicted per token (MAMP: frame-level motion), (N*M, L, patch x C)."""
        return masking.patchify(masking.frame_motion(x), self.patch_frames)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        (x,) = batch.views
        patches = masking.patchify(x, self.patch_frames)
        keep = masking.kept_count(patches.shape[1], self.settings.mask_ratio, self.settings.kept_rounding)
        kept, mask = self.choose_kept(patches, keep, batch.generator())
        latent = self.encoder.run_blocks(self.encoder.tokens(x), kept)
        pred = self.decoder(latent, kept).float()
        target = self.target(x).float()
        if self.settings.normalise_target:
            target = masking.normalise_patches(target)
        return {"loss": masking.masked_mse(pred, target, mask)}

    def encoder_for_eval(self) -> Encoder:
        """The encoder, seeing each evaluated clip translated as its training views were."""
        views = self.cfg.augment
        return FirstFrameTranslated(self.encoder, views.center_joint) if views.translate_first_frame else self.encoder

    def compiled_modules(self) -> list[nn.Module]:
        return [self.decoder]

    def param_groups(self) -> list[dict]:
        """The timm rule the authors use: no weight decay on 1-D parameters and biases."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        plain = [p for n, p in named if p.ndim <= 1 or n.endswith(".bias")]
        decayed = [p for n, p in named if not (p.ndim <= 1 or n.endswith(".bias"))]
        return [{"params": decayed}, {"params": plain, "weight_decay": 0.0}]


@register_method("mae_coords", "MAE on skeleton tokens: uniform random masking, coordinate target (MAMP's ablation)")
class MAECoords(MAMP):
    """MAMP with uniform random masking and the (normalised) coordinates as target; tau is unused."""

    compared_to: ClassVar[str | None] = "mamp"
    family: ClassVar[str] = "field"
    table_order: ClassVar[int] = 10
    citation: ClassVar[str] = "Mao et al., ICCV 2023 (its MAE baseline)"

    def choose_kept(self, patches: Tensor, keep: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return masking.random_kept(patches, keep, generator)

    def target(self, x: Tensor) -> Tensor:
        return masking.patchify(x, self.patch_frames)
