"""The finetune protocol: MAMP's layer-wise lr decay against the digest's factors, label smoothing
and drop path reach the training, learning on structured data, MAMP's BatchNorm probe head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import NTU_SPEC, tiny_config
from halp_bench.config import FinetuneConfig, make_config
from halp_bench.datasets.base import SkeletonData
from halp_bench.encoders import TransformerSettings, build_encoder
from halp_bench.errors import ConfigError
from halp_bench.methods.base import create_method
from halp_bench.protocols import classifier
from halp_bench.protocols.base import ProtocolContext
from halp_bench.protocols.finetune import layer_decay_groups, mamp_linear_head, run_finetune, with_drop_path
from halp_bench.protocols.linear import run_linear


def test_layer_decay_matches_mamps_factors():
    encoder = build_encoder(NTU_SPEC, TransformerSettings(dim=32, heads=4))  # 8 blocks
    head = torch.nn.Linear(32, 5)
    opt = FinetuneConfig(lr=3e-4, weight_decay=0.05, layer_decay=0.8)
    groups = layer_decay_groups(opt)(encoder, head)
    scale = {id(p): g["lr"] / 3e-4 for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert scale[id(encoder.pos_embed)] == pytest.approx(0.8**9)  # 0.134: the embeddings
    for i in range(8):
        assert scale[id(encoder.blocks[i].attn.qkv.weight)] == pytest.approx(0.8 ** (8 - i))
    assert scale[id(encoder.norm.weight)] == scale[id(head.weight)] == 1.0
    assert decay[id(encoder.blocks[0].mlp.fc1.weight)] == 0.05 and decay[id(encoder.blocks[0].mlp.fc1.bias)] == 0.0
    assert decay[id(encoder.pos_embed)] == 0.05  # 4-D embeddings are decayed, as the authors' rule does
    assert sum(len(g["params"]) for g in groups) == len(list(encoder.parameters())) + 2


def test_drop_path_and_layer_decay_need_the_encoder_hooks():
    bigru = build_encoder(NTU_SPEC, tiny_config("moco").encoder)
    with pytest.raises(ConfigError, match="finetune.drop_path"):
        with_drop_path(bigru, 0.3)
    with pytest.raises(ConfigError, match="finetune.layer_decay"):
        layer_decay_groups(FinetuneConfig(layer_decay=0.8))(bigru, torch.nn.Linear(4, 2))
    encoder = build_encoder(NTU_SPEC, TransformerSettings(dim=32, heads=4, depth=3))
    copied = with_drop_path(encoder, 0.3)
    assert [b.drop_path.rate for b in copied.blocks] == pytest.approx([0.0, 0.15, 0.3])
    assert [b.drop_path.rate for b in encoder.blocks] == [0.0, 0.0, 0.0]


def _structured(n: int = 48, classes: int = 3) -> SkeletonData:
    """Each class moves the joints (all but the two MAMP translates by) along a different axis:
    learnable from the raw sequences."""
    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.1, size=(n, 3, 8, 25, 2)).astype(np.float32)
    labels = np.arange(n) % classes
    for i, y in enumerate(labels):
        x[i, y, :, 2:, 0] += np.sin(np.linspace(0, 3, 8))[:, None]
    mask = np.zeros(n, dtype=bool)
    mask[: n * 3 // 4] = True
    return SkeletonData("structured", x, np.full(n, 8), labels, classes, "ntu25", {"all": mask}, "all")


def test_mamps_recipe_finetunes_and_learns(monkeypatch):
    cfg = tiny_config(
        "mamp",
        "finetune.epochs=30",
        "finetune.batch_size=8",
        "finetune.optimizer=adamw",
        "finetune.schedule=cosine",
        "finetune.lr=2e-3",
        "finetune.layer_decay=0.8",
        "finetune.label_smoothing=0.1",
        "finetune.drop_path=0.1",
        "finetune.warmup_epochs=1",
    )
    torch.manual_seed(0)
    encoder = create_method("mamp", cfg, NTU_SPEC).encoder_for_eval()
    seen = {}
    real = F.cross_entropy
    monkeypatch.setattr(classifier.F, "cross_entropy", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    train, test = _structured().split("all")
    metrics = run_finetune(encoder, train, test, ProtocolContext(cfg=cfg, device=torch.device("cpu")))
    assert seen["label_smoothing"] == 0.1
    assert metrics["top1"] > 70  # chance 33 %


def test_mamps_probe_head_normalises_without_affine():
    head = mamp_linear_head(16, 4)
    assert not head[0].affine and head[0].eps == 1e-6 and isinstance(head[1], torch.nn.Linear)
    cfg = tiny_config("mamp")
    assert make_config("paper", method="mamp").eval.linear_head == "batchnorm_linear" == cfg.eval.linear_head
    assert make_config("cpu", ["eval.protocol=common"], method="mamp").eval.linear_head == "linear"
    torch.manual_seed(0)
    encoder = create_method("mamp", tiny_config("mamp", "eval.linear_head=batchnorm_linear"), NTU_SPEC).encoder_for_eval()
    train, test = _structured().split("all")
    ctx = ProtocolContext(cfg=tiny_config("mamp", "eval.linear_head=batchnorm_linear"), device=torch.device("cpu"))
    assert run_linear(encoder, train, test, ctx)["encoder_frozen_verified"] == 1.0


def test_paper_recipes_and_the_common_protocol():
    paper = make_config("paper", method="mamp")
    assert (paper.finetune.optimizer, paper.finetune.lr, paper.finetune.layer_decay, paper.finetune.epochs) == ("adamw", 3e-4, 0.8, 100)
    assert (paper.pretrain.betas, paper.pretrain.min_lr, paper.pretrain.warmup_epochs, paper.data.frames) == ((0.9, 0.95), 5e-4, 20, 120)
    common = make_config("paper", ["eval.protocol=common"], method="mamp")
    assert common.finetune.optimizer == "sgd" and common.finetune.layer_decay == 1.0 and common.eval.linear_head == "linear"
    ntu120 = make_config("paper", ["data.dataset=ntu120"], method="mamp").method
    assert (ntu120.tau, ntu120.decoder_depth) == (0.75, 5) and make_config("paper", method="mamp").method.decoder_depth == 3
    assert make_config("official", method="mamp").method.kept_rounding == "floor"
