"""AimCLR: its views, its loss recomputed independently from the same embeddings, when mining
starts, and the encoders it refuses."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import NTU_SPEC, random_skeletons, tiny_config
from halp_bench.config import make_config
from halp_bench.datasets.views.clr import normal_view
from halp_bench.datasets.views.extreme import extreme_augment
from halp_bench.errors import ConfigError
from halp_bench.methods.aimclr_losses import attention_drop
from halp_bench.methods.base import Batch, create_method
from halp_bench.methods.components import ema_update
from halp_bench.skeleton import DataSpec, chain_layout


def _method(*more: str):
    torch.manual_seed(0)
    return create_method("aimclr", tiny_config("aimclr", *more), NTU_SPEC)


def _inputs(n: int = 8):
    data = random_skeletons(n=n, t=16)
    return torch.from_numpy(data.data), torch.from_numpy(data.lengths)


def test_views_are_extreme_then_normal_query_then_normal_key():
    method = _method()
    x, lengths = _inputs()
    views = method.make_views(x, lengths, torch.Generator().manual_seed(5))
    g, frames, augment = torch.Generator().manual_seed(5), method.cfg.data.frames, method.cfg.augment
    center = NTU_SPEC.layout.partition_center  # the views are relative to it
    extreme = extreme_augment(normal_view(x, lengths, frames, augment, g, center), NTU_SPEC.layout, augment, g)
    expected = (extreme, normal_view(x, lengths, frames, augment, g, center), normal_view(x, lengths, frames, augment, g, center))
    assert len(views) == 3
    for got, want in zip(views, expected):
        assert torch.equal(got, want)


def _log_softmax_at(logits: torch.Tensor) -> torch.Tensor:
    return logits - logits.exp().sum(dim=1, keepdim=True).log()


def _recomputed_loss(method, batch: Batch, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's loss from scratch on a copy: EMA, embeddings (the same dropout draws), then the
    terms written out; also the keys the step must enqueue."""
    m = copy.deepcopy(method)
    s = m.settings
    ema_update(m.encoders_k["joint"], m.encoders_q["joint"], s.momentum)
    extreme, view_q, view_k = batch.views
    torch.manual_seed(seed)
    q_net, k_net = m.encoders_q["joint"], m.encoders_k["joint"]
    q = F.normalize(q_net.head(q_net.encoder(view_q)), dim=1)
    with torch.no_grad():
        k = F.normalize(k_net.head(k_net.encoder(view_k)), dim=1)
    features = q_net.encoder.feature_map(extreme)
    e = F.normalize(q_net.head(q_net.encoder.pool(features, extreme.shape[-1])), dim=1)
    ed = F.normalize(q_net.head(q_net.encoder.pool(attention_drop(features, s.keep_prob, s.e_lambda), extreme.shape[-1])), dim=1)
    queue = m.queue.keys[0].clone()
    T = s.temperature
    logits = [torch.cat([(v * k).sum(1, keepdim=True), v @ queue.t()], dim=1) / T for v in (q, e, ed)]
    log_p = [_log_softmax_at(z) for z in logits]
    target = log_p[0].detach().exp()
    d3m = [-(target * lp).sum(1).mean() for lp in log_p[1:]]
    if batch.epoch >= s.mining_epoch:
        rows = []
        for n in range(len(q)):
            slots = {int(z[n, 1:].argmax()) for z in logits}  # top-1 of the normal, extreme, extreme+drop
            rows.append(-(log_p[0][n, 0] + sum(log_p[0][n, 1 + j] for j in slots)) / (1 + len(slots)))
        contrastive = torch.stack(rows).mean()
    else:
        contrastive = -log_p[0][:, 0].mean()
    return contrastive + 0.5 * (d3m[0] + d3m[1]), k


@pytest.mark.parametrize("epoch", [0, 1])
def test_loss_equals_an_independent_recomputation(epoch):
    method = _method("method.mining_epoch=1")
    x, lengths = _inputs()
    batch = Batch(method.make_views(x, lengths, torch.Generator().manual_seed(1)), epoch=epoch, iteration=0)
    expected, keys = _recomputed_loss(method, batch, seed=7)
    torch.manual_seed(7)
    method.step_momentum_targets(batch)  # what the engine does before every step
    losses = method.training_step(batch)
    assert set(losses) == {"contrastive_joint", "d3m_joint", "loss"}
    assert torch.allclose(losses["loss"], expected, atol=1e-5)
    assert torch.allclose(method.queue.recent(len(keys)), keys, atol=1e-6)


def test_mining_starts_after_mining_epoch_epochs():
    method = _method()
    assert method.settings.mining_epoch == 75  # cpu ST-GCN recipe: half of its 150 epochs
    assert not method.mining(74) and method.mining(75)  # 0-based epoch 75 is the official 1-based epoch 76 > 75
    official = create_method("aimclr", tiny_config("aimclr", "method.mining_epoch=150"), NTU_SPEC)
    assert not official.mining(149) and official.mining(150)


def test_mining_changes_the_contrastive_term_only():
    method = _method("method.mining_epoch=1")
    x, lengths = _inputs()
    views = method.make_views(x, lengths, torch.Generator().manual_seed(2))
    out = {}
    for epoch in (0, 1):
        clone = copy.deepcopy(method)
        torch.manual_seed(3)
        out[epoch] = clone.training_step(Batch(views, epoch=epoch, iteration=0))
    assert torch.equal(out[0]["d3m_joint"], out[1]["d3m_joint"])
    assert out[1]["contrastive_joint"] > out[0]["contrastive_joint"]  # random queue slots as positives: harder


def test_an_encoder_without_a_feature_map_is_refused():
    with pytest.raises(ConfigError, match="stgcn"):
        create_method("aimclr", tiny_config("aimclr", encoder="bigru"), NTU_SPEC)


def test_flipping_needs_a_layout_with_a_mirror():
    spec = DataSpec(channels=3, frames=8, joints=25, persons=2, layout=chain_layout(25))
    with pytest.raises(ConfigError, match="mirror"):
        create_method("aimclr", tiny_config("aimclr"), spec)
    create_method("aimclr", tiny_config("aimclr", "augment.flip_prob=0"), spec)


def test_two_dimensional_joints_are_refused():
    spec = DataSpec(channels=2, frames=8, joints=25, persons=2, layout=NTU_SPEC.layout)
    with pytest.raises(ConfigError, match="3-D"):
        create_method("aimclr", tiny_config("aimclr"), spec)


def test_official_preset_turns_the_code_quirks_on():
    assert tiny_config("aimclr").encoder.name == "stgcn"  # its default in every preset
    cfg = make_config("official", [], method="aimclr")
    assert cfg.augment.official_flip and cfg.augment.official_blur
    paper = make_config("paper", [], method="aimclr")
    assert not paper.augment.official_flip and not paper.augment.official_blur
    assert (paper.method.keep_prob, paper.method.topk, paper.method.mining_epoch, paper.method.d3m_weight) == (0.7, 1, 150, 0.5)
    # AimCLR's config is SkeletonCLR's recipe (field_methods.md §6.6): inherited, not repeated
    assert (cfg.pretrain.epochs, cfg.pretrain.milestones, cfg.pretrain.lr, cfg.pretrain.batch_size) == (300, (250,), 0.1, 128)
    assert (cfg.data.frames, cfg.method.queue_size, cfg.method.momentum, cfg.method.proj_dim) == (50, 32768, 0.999, 128)
    assert (cfg.augment.shear_amplitude, cfg.augment.temporal_padding_ratio, cfg.linear.lr) == (0.5, 6, 3.0)
