"""MAMP's released checkpoints (papers/mamp.md §9) for `halp-bench eval --checkpoint`.

The authors' training code writes `{"model": state_dict, "optimizer", "epoch", "scaler", "args":
argparse.Namespace}`; the encoder's keys are those of the `transformer` encoder (`joints_embed.proj`,
`pos_embed`, `temp_embed`, `blocks.{i}...`, `norm`). The decoder (`decoder*`), the mask token and a
fine-tuned file's `head.*` are dropped; the rest must load strictly. The size is read from the
shapes (width, depth, MLP ratio, frames per token, time steps); the head count is not in the
shapes and is MAMP's 8 unless `--set encoder.heads` says otherwise. The loaded encoder is checked
against a plain matmul-softmax computation with the same tensors. The protocols evaluate it behind
`FirstFrameTranslated` (methods/mamp_views.py): the authors' encoders read translated clips.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from halp_bench.encoders import Encoder, TransformerSettings, build_encoder
from halp_bench.errors import CheckpointError
from halp_bench.skeleton import DataSpec

DROPPED = ("decoder", "mask_token", "head.")
SAFE_GLOBALS = [argparse.Namespace]  # the `args` entry: plain values, allowed to the weights-only loader
REFERENCE_TOLERANCE = 1e-4
MAMP_CENTER_JOINT = 1  # the authors translate every clip by this joint (mid-spine) of its first frame


def is_mamp_layout(raw: dict[str, Any]) -> bool:
    model = raw.get("model")
    return isinstance(model, dict) and any(k.removeprefix("module.") == "joints_embed.proj.weight" for k in model)


def mamp_encoder_state(raw: dict[str, Any]) -> dict[str, Tensor]:
    """The encoder's tensors of a MAMP file: `module.` stripped, decoder, mask token and head dropped."""
    state = {key.removeprefix("module."): value for key, value in raw["model"].items()}
    return {key: value for key, value in state.items() if not key.startswith(DROPPED)}


def transformer_settings_from(path: Path, state: dict[str, Tensor], name: str, heads: int = 8) -> TransformerSettings:
    """The encoder's size from the file's shapes."""
    if name != "transformer":
        raise CheckpointError(path, f"holds MAMP transformer weights; --encoder {name} cannot take them (use transformer)")
    for key in ("joints_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            raise CheckpointError(path, f"missing {key} (MAMP's encoder)")
    dim = int(state["pos_embed"].shape[-1])
    depth = len({m.group(1) for key in state if (m := re.match(r"blocks\.(\d+)\.", key))})
    return TransformerSettings(
        name=name,
        dim=dim,
        depth=depth,
        heads=heads,
        mlp_ratio=int(state["blocks.0.mlp.fc1.weight"].shape[0]) / dim,
        patch_frames=int(state["joints_embed.proj.weight"].shape[2]),
    )


def load_mamp_encoder(path: Path, state: dict[str, Tensor], settings: TransformerSettings, data: DataSpec) -> Encoder:
    """The encoder with the file's tensors, loaded strictly and checked (eval mode)."""
    steps = int(state["temp_embed"].shape[1]) if "temp_embed" in state else 0
    if steps * settings.patch_frames != data.frames:
        raise CheckpointError(
            path,
            f"was trained on {steps * settings.patch_frames}-frame clips ({steps} time tokens of "
            f"{settings.patch_frames} frames); evaluate it with --set data.frames={steps * settings.patch_frames}",
        )
    if data.channels != int(state["joints_embed.proj.weight"].shape[1]) or data.joints != int(state["pos_embed"].shape[2]):
        raise CheckpointError(
            path,
            f"expects {int(state['joints_embed.proj.weight'].shape[1])} coordinates x "
            f"{int(state['pos_embed'].shape[2])} joints; the data has {data.channels} x {data.joints}",
        )
    encoder = build_encoder(data, settings)
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(path, "does not fit the transformer encoder: " + " ".join(str(exc).split())[:400]) from None
    check_against_plain_attention(path, encoder.eval(), state, settings, data)
    return encoder


@torch.no_grad()
def check_against_plain_attention(path: Path, encoder: Encoder, state: dict[str, Tensor], settings: TransformerSettings, data: DataSpec) -> None:
    reference = build_encoder(data, dataclasses.replace(settings, attention="plain"))
    reference.load_state_dict(state, strict=True)
    x = torch.randn(2, data.channels, data.frames, data.joints, data.persons, generator=torch.Generator().manual_seed(0))
    gap = (encoder(x) - reference.eval()(x)).abs().max().item()
    if not gap <= REFERENCE_TOLERANCE:
        raise CheckpointError(path, f"the loaded encoder's features differ from plain attention with the file's weights by {gap:.2g}")
