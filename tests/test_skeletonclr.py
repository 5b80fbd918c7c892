"""SkeletonCLR: its settings, recipe, views and the key-encoder initialisation option."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from conftest import NTU_SPEC, tiny_config
from halp_bench.config import ViewSettings, make_config
from halp_bench.datasets.views.clr import NormalAugmentSettings, normal_view
from halp_bench.errors import ConfigError
from halp_bench.methods.base import create_method
from halp_bench.methods.moco import MoCo
from halp_bench.methods.skeletonclr import SkeletonCLR
from halp_bench.registry import register_method


def test_settings_are_skeletonclrs_and_the_cpu_preset_is_mocos():
    cfg = make_config("cpu", method="skeletonclr")
    assert isinstance(cfg.augment, NormalAugmentSettings) and (cfg.augment.shear_amplitude, cfg.augment.temporal_padding_ratio) == (0.5, 6)
    assert (cfg.method.queue_size, cfg.method.momentum, cfg.method.proj_hidden) == (1024, 0.99, 256)
    assert cfg.encoder.name == "bigru" and cfg.data.frames == 16  # the recipe is not the cpu preset's
    defaults = SkeletonCLR.settings_class()
    assert (defaults.queue_size, defaults.momentum, defaults.temperature, defaults.proj_hidden, defaults.proj_dim) == (32768, 0.999, 0.07, 256, 128)


@pytest.mark.parametrize("preset", ["paper", "official"])
def test_the_stgcn_recipe_is_declared_for_paper_and_official(preset):
    values = SkeletonCLR.defaults_for(preset, "ntu60")
    assert values["encoder.name"] == "stgcn" and values["data.frames"] == 50
    assert (values["pretrain.lr"], values["pretrain.batch_size"], values["pretrain.epochs"], values["pretrain.milestones"]) == (0.1, 128, 300, (250,))
    assert (values["pretrain.weight_decay"], values["pretrain.momentum"], values["pretrain.nesterov"]) == (1e-4, 0.9, False)
    assert (values["linear.lr"], values["linear.epochs"], values["linear.milestones"], values["linear.weight_decay"]) == (3.0, 100, (80,), 0.0)
    assert values["eval.train_crop_min"] == values["eval.train_crop_max"] == values["eval.test_crop"] == 1.0
    assert SkeletonCLR.defaults_for(preset, "pku2")["linear.lr"] == 3.0  # not MoCo's PKU probe rate
    assert "encoder.name" not in SkeletonCLR.defaults_for("cpu")


def test_official_settings_start_the_key_encoder_from_an_independent_draw():
    assert SkeletonCLR.settings_class.for_preset("official").independent_key_init
    torch.manual_seed(0)
    copied = create_method("skeletonclr", tiny_config("skeletonclr"), NTU_SPEC)
    torch.manual_seed(0)
    independent = create_method("skeletonclr", tiny_config("skeletonclr", "method.independent_key_init=true"), NTU_SPEC)
    for method, equal in ((copied, True), (independent, False)):
        pairs = list(zip(method.encoders_q["joint"].parameters(), method.encoders_k["joint"].parameters()))
        assert all(torch.equal(q, k) for q, k in pairs) == equal
        assert not any(k.requires_grad for _, k in pairs)


def test_make_views_are_two_independent_normal_views():
    method = create_method("skeletonclr", tiny_config("skeletonclr"), NTU_SPEC)
    x, lengths = torch.randn(4, 3, 20, 25, 2), torch.tensor([20, 12, 8, 16])
    a, b = method.make_views(x, lengths, torch.Generator().manual_seed(0))
    replay = torch.Generator().manual_seed(0)
    first = normal_view(x, lengths, 8, method.cfg.augment, replay, center_joint=20)  # NTU's spine shoulder
    assert torch.equal(a, first) and torch.equal(b, normal_view(x, lengths, 8, method.cfg.augment, replay, center_joint=20))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("relative", [True, False])
def test_the_evaluated_encoder_sees_its_input_relative_as_the_views_are(relative):
    """Moving every joint of a frame by the same offset (a person walking, a camera further away)
    changes nothing the relative method sees, in training views and in evaluation alike."""
    method = create_method("skeletonclr", tiny_config("skeletonclr", f"augment.relative={relative}"), NTU_SPEC).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 8, 25, 2, generator=g)
    moved = x + torch.randn(3, 3, 8, 1, 2, generator=g)  # a per-frame, per-person translation
    encoder = method.encoder_for_eval()
    with torch.no_grad():
        same = torch.allclose(encoder(x), encoder(moved), atol=1e-5)
    views = [method.make_views(v, torch.tensor([8, 8, 8]), torch.Generator().manual_seed(2)) for v in (x, moved)]
    assert same == relative and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*views)) == relative


def test_only_a_method_with_views_of_its_own_may_drop_its_parents_view_settings():
    @dataclass
    class OtherViews(ViewSettings):
        scale: float = 1.0

    with pytest.raises(ConfigError, match="must extend its parent's AugmentSettings"):
        register_method("test_borrowed_views", settings=None, augment=OtherViews)(type("Borrowed", (MoCo,), {}))


def test_the_cpu_stgcn_recipe_applies_to_the_stgcn_alone():
    """`cpu@stgcn` run_defaults: the ST-GCN family's cpu rows on the ST-GCN train 150 epochs without
    the x0.1 step; the BiGRU keeps the cpu recipe, `--set` wins, and the recipe says where values came from."""
    from halp_bench.declarations import method_overview
    from halp_bench.orchestration.recipe import resolve_recipe

    stgcn = make_config("cpu", ["encoder.name=stgcn"], method="skeletonclr")
    assert (stgcn.pretrain.epochs, stgcn.pretrain.milestones, stgcn.encoder.dropout) == (150, (), 0.5)
    bigru = make_config("cpu", method="skeletonclr")
    assert (bigru.pretrain.epochs, bigru.pretrain.milestones) == (60, (50,))
    aimclr = make_config("cpu", method="aimclr")  # the ST-GCN in every preset; NNM from half the epochs
    assert (aimclr.pretrain.epochs, aimclr.pretrain.milestones, aimclr.method.mining_epoch) == (150, (), 75)
    assert make_config("cpu", ["encoder.name=stgcn"], method="crossclr").method.cross_epoch == 75
    assert make_config("cpu", ["encoder.name=stgcn", "pretrain.epochs=30"], method="skeletonclr").pretrain.epochs == 30
    assert make_config("paper", method="skeletonclr").pretrain.milestones == (250,)  # only the cpu preset's
    recipe = resolve_recipe("skeletonclr", "cpu", "synthetic", "xsub", 0, ["encoder.name=stgcn"])
    assert recipe.sources["pretrain.milestones"] == "run_defaults SkeletonCLR"
    assert method_overview("skeletonclr")["run_defaults"]["cpu@stgcn"]["pretrain.milestones"] == ()
