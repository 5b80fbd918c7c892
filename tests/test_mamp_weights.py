"""`eval --checkpoint` of a file in MAMP's released layout, built here: {"model", "optimizer",
"epoch", "scaler", "args": Namespace}, encoder keys at the top level next to the decoder's."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from halp_bench.encoders import TransformerSettings, build_encoder
from halp_bench.errors import CheckpointError
from halp_bench.registry import load_plugins
from halp_bench.skeleton import NTU25, DataSpec
from halp_bench.weights import eval_encoder_from_authors, read_weights

load_plugins()
SPEC = DataSpec(channels=3, frames=16, joints=25, persons=2, layout=NTU25)
SMALL = TransformerSettings(dim=32, depth=3, heads=8, mlp_ratio=4.0)


def _mamp_file(path, frames: int = 16) -> torch.nn.Module:
    """The authors' pretraining checkpoint of an encoder of SMALL's size; returns that encoder."""
    torch.manual_seed(3)
    encoder = build_encoder(dataclasses.replace(SPEC, frames=frames), SMALL)
    model = {key: value.clone() for key, value in encoder.state_dict().items()}
    model.update(
        {
            "mask_token": torch.randn(1, 1, 32),
            "decoder_embed.weight": torch.randn(32, 32),
            "decoder_embed.bias": torch.zeros(32),
            "decoder_blocks.0.attn.qkv.weight": torch.randn(96, 32),
            "decoder_pos_embed": torch.randn(1, 1, 25, 32),
            "decoder_pred.weight": torch.randn(12, 32),
            "decoder_pred.bias": torch.zeros(12),
        }
    )
    args = argparse.Namespace(lr=1e-3, mask_ratio=0.9, motion_aware_tau=0.8, config="pretrain_mamp.yaml")
    torch.save({"model": model, "optimizer": {"state": {}, "param_groups": []}, "epoch": 399, "scaler": {}, "args": args}, path)
    return encoder.eval()


def test_the_released_layout_loads_and_gives_the_encoders_features(tmp_path):
    path = tmp_path / "mamp_ntu60_xsub.pth"
    original = _mamp_file(path)
    weights = read_weights(path)
    assert weights.layout == "mamp" and not any(k.startswith(("decoder", "mask")) for k in weights.state)
    encoder, settings = eval_encoder_from_authors(weights, None, "joint", SPEC)
    assert (settings.dim, settings.depth, settings.mlp_ratio, settings.patch_frames) == (32, 3, 4.0, 4)
    x = torch.randn(3, 3, 16, 25, 2)
    translated = x - x[:, :, :1, 1:2, :1]  # the authors' input: every joint relative to the first frame's mid-spine (person 0)
    assert torch.allclose(encoder.eval()(x), original(translated), atol=1e-5)


def test_a_file_of_other_clips_or_missing_tensors_is_refused(tmp_path):
    path = tmp_path / "mamp_120.pth"
    _mamp_file(path, frames=24)
    with pytest.raises(CheckpointError, match="--set data.frames=24"):
        eval_encoder_from_authors(read_weights(path), None, "joint", SPEC)
    _mamp_file(path)
    raw = torch.load(path, weights_only=False)
    del raw["model"]["blocks.1.attn.proj.weight"]
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="blocks.1.attn.proj.weight"):
        eval_encoder_from_authors(read_weights(path), None, "joint", SPEC)


def test_eval_cli_stores_a_row_for_the_released_file(tmp_path):
    path = tmp_path / "mamp_ntu60_xsub.pth"
    _mamp_file(path)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "halp_bench.cli",
            "eval",
            "--checkpoint",
            str(path),
            "--method",
            "mamp",
            "--dataset",
            "synthetic",
            "--protocols",
            "knn",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
            "--set",
            "data.synthetic_samples=60",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (row,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["weights"]["layout"] == "mamp" and row["config"]["encoder"]["name"] == "transformer" and row["config"]["encoder"]["dim"] == 32
    assert 0 <= row["metrics"]["top1"] <= 100
