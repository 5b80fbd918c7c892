"""The transformer encoder's token-level hooks: running the blocks on each sample's kept tokens
equals running them on every token with the others hidden from attention (an independent masked
computation), SDPA equals the plain matmul-softmax attention, and the released layout's key names."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from halp_bench.encoders import Encoder, Transformer, TransformerSettings, build_encoder, encoder_hooks
from halp_bench.encoders.transformer import scatter_tokens
from halp_bench.registry import ENCODERS, load_plugins
from halp_bench.skeleton import NTU25, DataSpec

load_plugins()
SPEC = DataSpec(channels=3, frames=16, joints=25, persons=2, layout=NTU25)


def _encoder(**changes) -> Transformer:
    torch.manual_seed(0)
    settings = dataclasses.replace(TransformerSettings.for_preset("cpu"), **changes)
    return build_encoder(SPEC, settings)


def test_blocks_on_the_kept_subset_equal_masked_attention_on_all_tokens():
    encoder = _encoder().eval()
    x = torch.randn(3, 3, 16, 25, 2)
    tokens = encoder.tokens(x)  # (6, 100, 64)
    b, length, dim = tokens.shape
    g = torch.Generator().manual_seed(1)
    keep = torch.stack([torch.randperm(length, generator=g)[:17] for _ in range(b)])  # a different subset per sample
    subset = encoder.run_blocks(tokens, keep)
    visible = torch.zeros(b, length, dtype=torch.bool).scatter(1, keep, True)
    reference = tokens
    for block in encoder.blocks:  # every token, but attention only to the visible ones
        reference = block(reference, key_mask=visible)
    reference = encoder.norm(reference)
    scattered = scatter_tokens(subset, keep, length, torch.zeros(1, 1, dim))
    assert torch.allclose(scattered[visible], reference[visible], atol=1e-5)
    assert (scattered[~visible] == 0).all()
    # and on all tokens, run_blocks is the unmasked computation
    assert torch.allclose(encoder.run_blocks(tokens), encoder.run_blocks(tokens, torch.arange(length).expand(b, -1)), atol=1e-6)


def test_forward_pools_tokens_and_sdpa_equals_plain_attention():
    sdpa, plain = _encoder(), _encoder(attention="plain")
    plain.load_state_dict(sdpa.state_dict())
    x = torch.randn(2, 3, 16, 25, 2)
    feats = sdpa(x)
    tokens = sdpa.run_blocks(sdpa.tokens(x)).reshape(2, 2, -1, 64)
    assert torch.allclose(feats, tokens.mean(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(feats, plain(x), atol=1e-5)


def test_tokens_are_time_major_joint_patches_with_positions():
    encoder = _encoder()
    x = torch.zeros(1, 3, 16, 25, 2)
    x[0, :, 4:8, 7, 1] = 1.0  # frames 4..7 of joint 7, second person: token (t=1, v=7) of sequence 1
    tokens = encoder.tokens(x)
    empty = encoder.tokens(torch.zeros_like(x))
    changed = (tokens != empty).any(dim=-1)
    assert changed.nonzero().tolist() == [[1, 1 * 25 + 7]]
    positions = empty[0] - encoder.joints_embed.proj.bias
    assert torch.allclose(positions.reshape(4, 25, 64), (encoder.pos_embed + encoder.temp_embed)[0], atol=1e-6)


def test_hooks_are_declared_and_missing_ones_are_a_config_error():
    assert "tokens" in encoder_hooks(Transformer)
    assert "tokens" not in encoder_hooks(ENCODERS.get("bigru")) and "feature_map" in encoder_hooks(ENCODERS.get("stgcn"))
    bigru = build_encoder(SPEC, ENCODERS.get("bigru").settings_class.for_preset("cpu"))
    with pytest.raises(Exception, match="no tokens hook"):
        bigru.tokens(torch.zeros(1, 3, 16, 25, 2))
    assert isinstance(bigru, Encoder)


def test_key_names_and_sizes_are_the_released_layout():
    encoder = build_encoder(SPEC, TransformerSettings())  # 8 x 256
    keys = encoder.state_dict()
    assert keys["joints_embed.proj.weight"].shape == (256, 3, 4, 1)
    assert keys["pos_embed"].shape == (1, 1, 25, 256) and keys["temp_embed"].shape == (1, 4, 1, 256)
    assert keys["blocks.7.attn.qkv.weight"].shape == (768, 256) and keys["blocks.0.mlp.fc1.weight"].shape == (1024, 256)
    # the digest's count at 120 frames: 6,336,000 (temp_embed 30 x 256)
    at_120 = build_encoder(dataclasses.replace(SPEC, frames=120), TransformerSettings())
    assert sum(p.numel() for p in at_120.parameters()) == 6_336_000


def test_frames_must_fill_whole_tokens():
    with pytest.raises(Exception, match="multiple of encoder.patch_frames"):
        build_encoder(dataclasses.replace(SPEC, frames=18), TransformerSettings.for_preset("cpu"))
