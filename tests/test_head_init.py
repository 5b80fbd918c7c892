"""Initialisation per family under `official`: projection heads and the probe's classifier drawn as
each authors' code draws them; PyTorch's defaults (the papers say nothing) otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import NTU_SPEC
from halp_bench.config import make_config
from halp_bench.methods.base import create_method
from halp_bench.protocols.classifier import new_head

WIDE = ["method.proj_hidden=512", "method.proj_dim=256", "encoder.hidden_size=128", "encoder.num_layers=1"]


def head(method: str, preset: str, *extra: str) -> torch.nn.Sequential:
    torch.manual_seed(0)
    cfg = make_config(preset, [*WIDE, *extra], method=method)
    return create_method(method, cfg, NTU_SPEC).encoders_q["joint"].head


def test_stgcn_family_heads_are_normal_002_with_zero_bias_under_official():
    first, last = (
        layer for layer in head("skeletonclr", "official", "encoder.name=bigru", "encoder.hidden_size=128").modules() if isinstance(layer, torch.nn.Linear)
    )
    for layer in (first, last):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05) and abs(layer.weight.mean().item()) < 2e-3
        assert not layer.bias.any()
    assert make_config("official", [], method="skeletonclr").eval.head_std == 0.02
    torch.manual_seed(0)
    assert new_head(256, 60, 0.02).weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_cmd_family_last_layer_is_xavier_and_the_paper_keeps_pytorch_defaults():
    first, last = (layer for layer in head("moco", "official", "encoder.name=bigru").modules() if isinstance(layer, torch.nn.Linear))
    xavier = math.sqrt(6 / (512 + 256))  # uniform bound of the last layer (256 <- 512)
    default_first = 1 / math.sqrt(first.in_features)
    assert last.weight.abs().max().item() == pytest.approx(xavier, rel=0.02)
    assert first.weight.abs().max().item() == pytest.approx(default_first, rel=0.02)  # PyTorch's default kept
    paper = [layer for layer in head("moco", "paper").modules() if isinstance(layer, torch.nn.Linear)][-1]
    assert paper.weight.abs().max().item() == pytest.approx(1 / math.sqrt(512), rel=0.02)
    assert make_config("official", [], method="moco").eval.head_std == 0.01
    assert make_config("official", ["eval.protocol=common"], method="skeletonclr").eval.head_std == 0.01  # one protocol for all
