"""`finetune.head=mamp_mlp`: MAMP's fine-tuning head on the encoder's tokens, its size at the
paper's, its forward against an independent computation, layer-wise lr decay, learning through
the unchanged finetune loop, the refusal of encoders without tokens, the presets."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from test_finetune import _structured

from conftest import NTU_SPEC, tiny_config
from halp_bench.config import FinetuneConfig, make_config
from halp_bench.encoders import TransformerSettings, build_encoder
from halp_bench.errors import ConfigError
from halp_bench.identity import config_id
from halp_bench.methods.base import create_method
from halp_bench.methods.requirements import check_finetune_head
from halp_bench.protocols.base import ProtocolContext
from halp_bench.protocols.finetune import layer_decay_groups, run_finetune
from halp_bench.protocols.token_head import TokenHeadClassifier
from halp_bench.skeleton import NTU25, DataSpec


def test_the_head_has_the_digests_parameter_count_at_the_paper_size():
    encoder = build_encoder(DataSpec(channels=3, frames=120, joints=25, persons=2, layout=NTU25), TransformerSettings())
    model = TokenHeadClassifier(encoder, 60, 2048, 0.3)
    assert sum(p.numel() for p in model.head.parameters()) == 13_236_284  # 6400*2048+2048 + 2*2048 + 2048*60+60
    assert sum(p.numel() for p in model.parameters()) == 13_236_284 + 6_336_000
    assert model.head.dropout.p == 0.3 and model.head.bn.momentum == 0.1


def test_the_head_equals_an_independent_computation_in_eval_mode():
    torch.manual_seed(0)
    encoder = build_encoder(NTU_SPEC, TransformerSettings(dim=16, depth=1, heads=2, patch_frames=4))
    model = TokenHeadClassifier(encoder, 5, 12, 0.3).eval()
    bn = model.head.bn
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2), bn.bias.data.uniform_(-1, 1)
    x = torch.randn(3, 3, 8, 25, 2)
    x[1, :, :, :, 1] = 0  # an absent second person is averaged in, as the authors do
    with torch.no_grad():
        logits = model(x)
        tokens = encoder.run_blocks(encoder.tokens(x))  # (N*M, T'*V, D), token t*V + v, sequence n*M + m
        frames, joints = encoder.token_grid
        rows = []
        for n in range(3):
            per_person = []
            for m in range(2):
                seq = tokens[n * 2 + m]
                per_person.append(torch.cat([torch.stack([seq[t * joints + v] for t in range(frames)]).mean(0) for v in range(joints)]))
            rows.append(torch.stack(per_person).mean(0))
        feature = torch.stack(rows)  # (N, V*D)
        hidden = feature @ model.head.fc1.weight.T + model.head.fc1.bias
        hidden = (hidden - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        expected = hidden.clamp(min=0) @ model.head.fc2.weight.T + model.head.fc2.bias
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    model.train()
    torch.manual_seed(1)
    dropped = model(x)
    torch.manual_seed(1)
    model.head.dropout.p = 0.0
    assert not torch.allclose(dropped, model(x))  # the dropout acts on the tokens in training


def test_the_head_initialises_as_the_authors_model():
    torch.manual_seed(0)
    head = TokenHeadClassifier(build_encoder(NTU_SPEC, TransformerSettings(dim=16, depth=1, heads=2)), 5, 64, 0.3).head
    bound = (6 / (25 * 16 + 64)) ** 0.5  # xavier-uniform
    assert head.fc1.weight.abs().max() <= bound and head.fc1.weight.abs().max() > 0.9 * bound
    assert (head.fc1.bias == 0).all() and (head.fc2.bias == 0).all() and (head.bn.weight == 1).all() and (head.bn.bias == 0).all()


def test_layer_decay_puts_the_head_in_the_top_layer():
    encoder = build_encoder(NTU_SPEC, TransformerSettings(dim=16, depth=3, heads=2))
    model = TokenHeadClassifier(encoder, 5, 12, 0.3)
    groups = layer_decay_groups(FinetuneConfig(lr=1.0, weight_decay=0.05, layer_decay=0.8))(model, torch.nn.Identity())
    scale = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert scale[id(model.head.fc1.weight)] == scale[id(model.head.bn.weight)] == scale[id(encoder.norm.weight)] == 1.0
    assert scale[id(encoder.pos_embed)] == pytest.approx(0.8**4) and scale[id(encoder.blocks[2].attn.qkv.weight)] == pytest.approx(0.8)
    assert decay[id(model.head.fc2.weight)] == 0.05 and decay[id(model.head.bn.weight)] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_mamps_head_finetunes_and_learns():
    cfg = tiny_config(
        "mamp",
        "finetune.epochs=30",
        "finetune.batch_size=8",
        "finetune.lr=2e-3",
        "finetune.warmup_epochs=1",
        "finetune.drop_path=0.1",
        "finetune.head_hidden=64",
        "eval.train_rotation=0.3",
    )
    assert (cfg.finetune.head, cfg.finetune.layer_decay) == ("mamp_mlp", 0.8)
    torch.manual_seed(0)
    encoder = create_method("mamp", cfg, NTU_SPEC).encoder_for_eval()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train, test = _structured().split("all")
    metrics = run_finetune(encoder, train, test, ProtocolContext(cfg=cfg, device=torch.device("cpu")))
    assert metrics["top1"] > 70  # chance 33 %
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())  # a copy was trained


def test_an_encoder_without_tokens_is_refused():
    bigru = build_encoder(NTU_SPEC, tiny_config("moco").encoder)
    with pytest.raises(ConfigError, match="finetune.head=mamp_mlp needs the encoder's tokens hook .* which encoder bigru lacks"):
        TokenHeadClassifier(bigru, 3, 8, 0.3)
    configs = {"moco": make_config("cpu", ["finetune.head=mamp_mlp"], method="moco")}
    with pytest.raises(ConfigError, match="method moco: finetune.head=mamp_mlp needs .* encoder bigru lacks"):
        check_finetune_head(configs, ["knn", "finetune"])
    check_finetune_head(configs, ["knn", "linear"])  # no finetune: nothing to refuse
    with pytest.raises(ConfigError, match="method aimclr: finetune.head=mamp_mlp needs .* encoder stgcn lacks"):
        check_finetune_head({"aimclr": make_config("cpu", ["finetune.head=mamp_mlp"], method="aimclr")}, ["finetune"])
    check_finetune_head({"mamp": make_config("cpu", method="mamp")}, ["finetune"])


def test_the_grid_refuses_before_any_training(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "halp_bench.cli", "run", "--methods", "moco", "--protocols", "knn,finetune", "--set", "finetune.head=mamp_mlp"]
    result = subprocess.run([*command, "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert (
        "error: method moco: finetune.head=mamp_mlp needs the encoder's tokens hook (tokens, run_blocks, pool_tokens), which encoder bigru lacks"
        in result.stderr
    )
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (out / "runs").exists()


def test_presets_the_common_protocol_and_identities():
    for method in ("mamp", "mae_coords"):
        for preset in ("cpu", "paper", "official"):
            finetune = make_config(preset, method=method).finetune
            assert (finetune.head, finetune.head_hidden, finetune.head_dropout) == ("mamp_mlp", 2048, 0.3), (method, preset)
        assert make_config("paper", ["eval.protocol=common"], method=method).finetune.head == "linear"
    assert make_config("paper", method="moco").finetune.head == "linear"
    with pytest.raises(ConfigError, match="finetune.head=mlp: choose one of linear, mamp_mlp"):
        make_config("cpu", ["finetune.head=mlp"])
    cfg = make_config("cpu", method="moco")
    stored = cfg.to_dict()
    for key in ("head", "head_hidden", "head_dropout"):
        del stored["finetune"][key]
    mlp = make_config("cpu", ["finetune.head=mamp_mlp"], method="moco")
    for protocol in ("knn", "linear", "finetune", "transfer"):
        assert config_id("moco", protocol, cfg, cfg) == config_id("moco", protocol, stored, stored), protocol
        assert (config_id("moco", protocol, mlp, mlp) != config_id("moco", protocol, cfg, cfg)) == (protocol == "finetune"), protocol


def test_transfer_keeps_its_linear_head_whatever_finetune_head_says():
    """transfer (and semi) read `transfer.*`: MAMP's head, a finetune setting, does not reach them,
    so a BiGRU transfers with finetune.head=mamp_mlp set."""
    from halp_bench.protocols.transfer import run_transfer

    cfg = tiny_config("moco", "finetune.head=mamp_mlp")
    torch.manual_seed(0)
    encoder = create_method("moco", cfg, NTU_SPEC).encoder_for_eval()
    train, test = _structured().split("all")
    assert run_transfer(encoder, train, test, ProtocolContext(cfg=cfg, device=torch.device("cpu")))["epochs"] == 1.0


def test_mamps_evaluated_encoder_gives_the_tokens_of_the_translated_clip():
    torch.manual_seed(0)
    method = create_method("mamp", tiny_config("mamp"), NTU_SPEC)
    evaluated, encoder = method.encoder_for_eval().eval(), method.encoder.eval()
    x = torch.randn(2, 3, 8, 25, 2) + 3.0  # camera coordinates far from the origin
    with torch.no_grad():
        torch.testing.assert_close(evaluated.tokens(x), encoder.tokens(x - x[:, :, :1, 1:2, :1]), atol=1e-5, rtol=0)
        torch.testing.assert_close(evaluated.pool_tokens(evaluated.run_blocks(evaluated.tokens(x)), 2), evaluated(x), atol=1e-5, rtol=0)
    assert evaluated.token_grid == encoder.token_grid and evaluated.token_dim == encoder.token_dim
