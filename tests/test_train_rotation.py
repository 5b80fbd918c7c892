"""`eval.train_rotation`: the classifier protocols' training crops rotated as MAMP's feeder does
(one R = Rz Ry Rx per sample, angles U(-r, r), about the origin), drawn from the crop generator;
test crops never rotated; the setting out of every identity at 0 and in MAMP's recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config
from halp_bench.config import make_config
from halp_bench.datasets.views.cmd import random_crop_resize
from halp_bench.datasets.views.rotation import random_rotation
from halp_bench.errors import ConfigError
from halp_bench.identity import config_id
from halp_bench.methods.base import create_method
from halp_bench.methods.mamp_views import translate_by_first_frame
from halp_bench.protocols import classifier
from halp_bench.protocols.base import ProtocolContext
from halp_bench.protocols.classifier import _ClassifierHooks, new_head
from halp_bench.registry import PROTOCOLS


def authors_rotation(angles: np.ndarray) -> np.ndarray:
    """R = Rz @ Ry @ Rx with the factors as MAMP's feeder/tools.py `_rot` writes them."""
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Skeletons (B, 3, T, V, 2) of varying lengths, zero-padded; person 1 absent in sample 0 and
    person 0 absent for two frames of sample 1."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([12, 9, 7, 12])
    x = torch.randn(4, 3, 12, 25, 2, generator=gen) + torch.tensor([0.3, -0.2, 3.0]).view(1, 3, 1, 1, 1)
    x[torch.arange(12).view(1, 1, 12, 1, 1).expand_as(x) >= lengths.view(4, 1, 1, 1, 1)] = 0.0
    x[0, :, :, :, 1] = 0.0
    x[1, :, 3:5, :, 0] = 0.0
    return x, lengths


def _hooks(*settings: str) -> _ClassifierHooks:
    ctx = ProtocolContext(cfg=tiny_config("moco", *settings), device=torch.device("cpu"))
    return _ClassifierHooks(None, None, None, None, ctx, finetune=False, label="linear")


def test_training_crops_are_rotated_by_one_authors_matrix_per_sample():
    x, lengths = _batch()
    hooks = _hooks("eval.train_rotation=0.3")
    replay = torch.Generator().set_state(hooks.crop_gen.get_state())
    view, labels = hooks.inputs((x, lengths, torch.arange(4)), 0, 0)
    assert torch.equal(labels, torch.arange(4))
    crop = random_crop_resize(x, lengths, 8, (0.5, 1.0), 8, replay)  # the crop, then (B, 3) uniforms for the angles
    angles = (-0.3 + 0.6 * torch.rand((4, 3), generator=replay)).double().numpy()
    assert torch.equal(hooks.crop_gen.get_state(), replay.get_state())  # nothing else drawn
    for b in range(4):
        rotation = authors_rotation(angles[b])
        expected = np.einsum("ij,jtvm->itvm", rotation, crop[b].double().numpy())
        np.testing.assert_allclose(view[b].double().numpy(), expected, atol=1e-5)
        # one matrix for every frame and both persons: the least-squares map of the crop onto the view
        points, moved = crop[b].reshape(3, -1).double().numpy(), view[b].reshape(3, -1).double().numpy()
        fitted = moved @ np.linalg.pinv(points)
        np.testing.assert_allclose(fitted, rotation, atol=1e-5)
        assert np.abs(angles[b]).max() <= 0.3
    assert (view[0, :, :, :, 1] == 0).all()  # the absent person stays zero
    assert torch.equal(view.abs().sum(dim=(1, 3)) == 0, crop.abs().sum(dim=(1, 3)) == 0)  # absent frames too


def test_no_rotation_draws_nothing_and_keeps_todays_crops():
    x, lengths = _batch()
    hooks = _hooks()
    assert hooks.ctx.cfg.eval.train_rotation == 0.0
    replay = torch.Generator().set_state(hooks.crop_gen.get_state())
    view, _ = hooks.inputs((x, lengths, torch.arange(4)), 0, 0)
    assert torch.equal(view, random_crop_resize(x, lengths, 8, (0.5, 1.0), 8, replay))
    assert torch.equal(hooks.crop_gen.get_state(), replay.get_state())


def test_rotated_crops_are_seeded():
    x, lengths = _batch()
    first, _ = _hooks("eval.train_rotation=0.3").inputs((x, lengths, torch.arange(4)), 0, 0)
    again, _ = _hooks("eval.train_rotation=0.3").inputs((x, lengths, torch.arange(4)), 0, 0)
    other, _ = _hooks("eval.train_rotation=0.3", "seed=1").inputs((x, lengths, torch.arange(4)), 0, 0)
    assert torch.equal(first, again) and not torch.allclose(first, other)


def test_rotating_before_the_first_frame_translation_equals_the_authors_order():
    """The protocol rotates the crop, then FirstFrameTranslated subtracts the rotated crop's first
    frame's mid-spine joint: R x - R x0 = R (x - x0), the authors' rotation of the translated clip."""
    x, lengths = _batch()
    crop = random_crop_resize(x, lengths, 8, (0.5, 1.0), 8, torch.Generator().manual_seed(3))
    frames = torch.full((4,), 8)
    ours = translate_by_first_frame(random_rotation(crop, 0.3, torch.Generator().manual_seed(5)), frames, 1)
    authors = random_rotation(translate_by_first_frame(crop, frames, 1), 0.3, torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours, authors, atol=1e-5, rtol=0)
    assert not torch.allclose(ours, translate_by_first_frame(crop, frames, 1), atol=1e-3)  # it did rotate


def test_test_crops_are_never_rotated():
    data = random_skeletons(n=12, t=12)
    _, test = data.split(data.default_split)
    cfg_plain, cfg_rotated = tiny_config("moco"), tiny_config("moco", "eval.train_rotation=0.3")
    torch.manual_seed(0)
    encoder = create_method("moco", cfg_plain, NTU_SPEC).encoder_for_eval()
    head = new_head(encoder.feature_dim, data.num_classes)
    plain = classifier.test_scores(encoder, head, test, ProtocolContext(cfg=cfg_plain, device=torch.device("cpu")))
    rotated = classifier.test_scores(encoder, head, test, ProtocolContext(cfg=cfg_rotated, device=torch.device("cpu")))
    assert torch.equal(plain[0], rotated[0])


def test_the_setting_its_range_and_who_reads_it():
    assert make_config("cpu").eval.train_rotation == 0.0
    for method in ("mamp", "mae_coords"):
        for preset in ("cpu", "paper", "official"):
            assert make_config(preset, method=method).eval.train_rotation == 0.3, (method, preset)
        assert make_config("paper", ["eval.protocol=common"], method=method).eval.train_rotation == 0.0
    assert make_config("paper", method="moco").eval.train_rotation == 0.0
    for bad in ("4", "-0.1"):
        with pytest.raises(ConfigError, match="eval.train_rotation"):
            make_config("cpu", [f"eval.train_rotation={bad}"])
    for protocol in ("linear", "finetune", "transfer", "semi"):
        assert "eval.train_rotation" in PROTOCOLS.get(protocol).uses
    with pytest.raises(ConfigError, match=r"eval.train_rotation\)? needs 3-D joints"):
        random_rotation(torch.zeros(1, 2, 4, 5, 1), 0.3, None, "eval.train_rotation")


def test_identities_are_unchanged_at_zero_and_change_when_rotating():
    """A cell stored before the setting existed (its config without the key) keeps its config id."""
    cfg = make_config("cpu", method="moco")
    stored = cfg.to_dict()
    del stored["eval"]["train_rotation"]
    rotated = make_config("cpu", ["eval.train_rotation=0.3"], method="moco")
    for protocol in ("knn", "linear", "finetune", "transfer", "semi"):
        assert config_id("moco", protocol, cfg, cfg) == config_id("moco", protocol, stored, stored), protocol
        assert (config_id("moco", protocol, rotated, rotated) != config_id("moco", protocol, cfg, cfg)) == (protocol != "knn"), protocol
