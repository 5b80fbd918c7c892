"""MAMP's input views (CTR-GCN style; papers/mamp.md §1.1, §2): translation by the first frame's
mid-spine joint, a random crop of 50-100 % of the valid frames (at least `min_crop_frames`) resized
to `data.frames` (120 in the paper), and a rotation U(-0.3, 0.3) rad about each axis.

The authors translate once when preparing the data; here it is part of the view, so the same
prepared arrays serve every method. A person's all-zero (absent) frames stay zero, as their
preprocessing leaves them. The protocols read the data as given, so what they evaluate is the
encoder behind `FirstFrameTranslated`, which translates each evaluated clip the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from halp_bench.config import ViewSettings
from halp_bench.datasets.views.cmd import random_crop_resize
from halp_bench.datasets.views.rotation import random_rotation
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.validation import ranged


@dataclass
class MAMPViewSettings(ViewSettings):
    """MAMP's training views. `cpu`: a 16-frame minimum crop (the cpu preset's views have 16 frames)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"min_crop_frames": 16}}
    translate_first_frame: bool = True
    center_joint: int = ranged(1, "[0, inf)")  # NTU's mid-spine (joint 2, 1-based)
    crop_min_scale: float = ranged(0.5, "(0, 1]")
    crop_max_scale: float = ranged(1.0, "(0, 1]")
    min_crop_frames: int = ranged(64, "[1, inf)")
    rotation: float = ranged(0.3, "[0, inf)")  # radians, each axis U(-rotation, rotation); 0 turns it off


def translate_by_first_frame(x: Tensor, lengths: Tensor, joint: int) -> Tensor:
    """Subtract `joint` of person 0 in its first non-zero frame from every non-zero frame of every
    person (frames past `lengths` and absent persons stay zero). x: (B, C, T, V, M)."""
    b, _, t, v, _ = x.shape
    if not 0 <= joint < v:
        raise ConfigError(f"--set augment.center_joint={joint}: the data has joints 0..{v - 1}")
    present = x.abs().sum(dim=(1, 3)) > 0  # (B, T, M)
    first = present[:, :, 0].float().argmax(dim=1)  # first frame where person 0 is there (0 if never)
    origin = x[torch.arange(b), :, first, joint, 0]  # (B, C)
    inside = present & (torch.arange(t, device=x.device)[None, :, None] < lengths.to(x.device)[:, None, None])
    shift = origin[:, :, None, None, None] * inside[:, None, :, None, :].to(x.dtype)
    return x - shift


def mamp_view(x: Tensor, lengths: Tensor, frames: int, s: MAMPViewSettings, generator: torch.Generator | None) -> Tensor:
    """One training view of raw sequences x (B, C, T_max, V, M) with valid `lengths` -> (B, C, frames, V, M)."""
    if s.translate_first_frame:
        x = translate_by_first_frame(x, lengths, s.center_joint)
    view = random_crop_resize(x, lengths, frames, (s.crop_min_scale, s.crop_max_scale), s.min_crop_frames, generator)
    return random_rotation(view, s.rotation, generator) if s.rotation > 0 else view


class FirstFrameTranslated(Encoder):
    """An encoder that sees every clip translated by its first frame's `joint` (person 0), as MAMP's
    encoder is trained and as the authors' released encoders expect: what the protocols evaluate.
    The crop the protocols take comes first, so the origin is the crop's first frame."""

    def __init__(self, encoder: Encoder, joint: int):
        nn.Module.__init__(self)
        self.encoder, self.joint = encoder, joint
        self.feature_dim = encoder.feature_dim
        for name in ("token_grid", "token_dim", "patch_frames"):  # the token hooks' shapes (finetune.head=mamp_mlp)
            if hasattr(encoder, name):
                setattr(self, name, getattr(encoder, name))
        if hasattr(encoder, "layer_id"):  # layered only if the wrapped encoder is (finetune.layer_decay checks once)
            self.layer_id = self._wrapped_layer_id

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(self._translated(x))

    def _translated(self, x: Tensor) -> Tensor:
        frames = torch.full((len(x),), x.shape[2], dtype=torch.long, device=x.device)
        return translate_by_first_frame(x, frames, self.joint)

    def tokens(self, x: Tensor) -> Tensor:
        """The wrapped encoder's tokens of the translated clip."""
        return self.encoder.tokens(self._translated(x))

    def run_blocks(self, tokens: Tensor, keep: Tensor | None = None) -> Tensor:
        return self.encoder.run_blocks(tokens, keep)

    def pool_tokens(self, tokens: Tensor, persons: int) -> Tensor:
        return self.encoder.pool_tokens(tokens, persons)

    def _wrapped_layer_id(self, name: str) -> int:
        """The wrapped encoder's layer of a parameter (layer-wise lr decay in the finetune protocol)."""
        return self.encoder.layer_id(name.removeprefix("encoder."))

    def set_drop_path(self, rate: float) -> None:
        if not hasattr(self.encoder, "set_drop_path"):
            raise ConfigError(
                f"finetune.drop_path needs an encoder with stochastic depth, which {type(self.encoder).__name__} has not; --set finetune.drop_path=0"
            )
        self.encoder.set_drop_path(rate)
