"""`data.normalize` for data brought as it is: the same transforms `prepare` applies, any layout that
names its joints (a 20-joint Kinect v1 `.npz` too), part of a cell's identity, said in tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import KINECT_FROM_NTU, sensor_skeletons, tiny_overrides, write_pku
from halp_bench.config import DataConfig, make_config
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.formats.prepared_dir import load_prepared
from halp_bench.datasets.raw.prepare import prepare_dataset
from halp_bench.errors import ConfigError
from halp_bench.identity import config_id, pretrain_id
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.results.row import read_rows
from halp_bench.results.tables import build_tables

CENTRE = 1  # the spine-middle joint of NTU-25 and the spine of Kinect v1 (0-based)


@pytest.fixture(scope="module")
def camera_skeletons() -> tuple[np.ndarray, np.ndarray]:
    return sensor_skeletons()


def save_npz(path: Path, x: np.ndarray, lengths: np.ndarray, **extra) -> Path:
    n = len(x)
    np.savez(path, x=x, y=np.arange(n) % 2, length=lengths.astype(np.int64), split_mine=np.arange(n) < n // 2, **extra)
    return path


def loaded(path: Path, normalize: str) -> np.ndarray:
    return np.asarray(load_dataset(DataConfig(dataset=str(path), normalize=normalize)).data)


def best_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation R minimising |source @ R.T - target| over (P, 3) points (Kabsch)."""
    u, _, vt = np.linalg.svd(source.T @ target)
    d = np.sign(np.linalg.det(u @ vt))
    return (u @ np.diag([1.0, 1.0, d]) @ vt).T


def test_agcn_and_center_on_an_npz_equal_what_prepare_does(tmp_path, camera_skeletons):
    x, lengths = camera_skeletons
    write_pku(tmp_path / "raw", x, lengths)
    prepare_dataset("pku2", tmp_path / "raw", tmp_path / "raw_prepared", workers=1, normalize=False, max_frames=96, progress=False)
    prepare_dataset("pku2", tmp_path / "raw", tmp_path / "prepared", workers=1, normalize=True, max_frames=96, progress=False)
    raw, prepared = load_prepared(tmp_path / "raw_prepared"), load_prepared(tmp_path / "prepared")
    npz = save_npz(tmp_path / "mine.npz", np.asarray(raw.data), raw.lengths, layout="ntu25")  # the same skeletons, brought as they are
    np.testing.assert_allclose(loaded(npz, "agcn"), prepared.data, atol=2e-5)
    assert np.abs(loaded(npz, "none") - prepared.data).max() > 0.5  # camera coordinates: metres away from it

    centred = loaded(npz, "center")
    given = np.asarray(raw.data)
    present = (given != 0).any(axis=1, keepdims=True)
    np.testing.assert_allclose(centred, (given - given[:, :, :, [CENTRE], :1]) * present, atol=1e-6)  # independent: by definition
    for i, length in enumerate(raw.lengths):  # prepare's output is `center` turned by one rotation per sample
        source = centred[i, :, :length].transpose(1, 2, 3, 0).reshape(-1, 3)
        target = np.asarray(prepared.data[i, :, :length]).transpose(1, 2, 3, 0).reshape(-1, 3)
        np.testing.assert_allclose(source @ best_rotation(source, target).T, target, atol=2e-5)


def test_center_first_keeps_the_path_through_the_room(tmp_path, camera_skeletons):
    x, lengths = camera_skeletons
    x = x.copy()
    x[0, :, :2, CENTRE, 0] = 0  # dropped in the first two frames: the origin is taken from the third
    out = loaded(save_npz(tmp_path / "mine.npz", x, lengths, layout="ntu25"), "center_first")
    present = (x != 0).any(axis=1, keepdims=True)
    for i in range(len(x)):
        first = np.flatnonzero((x[i, :, :, CENTRE, 0] != 0).any(axis=0))[0]
        expected = (x[i] - x[i, :, first, CENTRE, 0][:, None, None, None]) * present[i]
        np.testing.assert_allclose(out[i], expected, atol=1e-6)
    assert not out[0, :, 2, CENTRE, 0].any() and np.abs(out[0, :, 2, 0, 0]).max() > 0.01
    walked = out[1:, :, :, CENTRE, 0]  # the centre joint moves as before, from the origin
    np.testing.assert_allclose(walked[:, :, 1] - walked[:, :, 0], x[1:, :, 1, CENTRE, 0] - x[1:, :, 0, CENTRE, 0], atol=1e-6)


@pytest.mark.parametrize("normalize", ["none", "center", "center_first", "agcn"])
def test_a_kinect_v1_npz_works_with_every_normalisation(tmp_path, camera_skeletons, normalize):
    x, lengths = camera_skeletons
    kinect = np.ascontiguousarray(x[:, :, :, KINECT_FROM_NTU])
    out = loaded(save_npz(tmp_path / "kinect.npz", kinect, lengths, layout="kinect_v1_20"), normalize)
    assert out.shape == kinect.shape and np.isfinite(out).all()
    frames = np.arange(out.shape[2])[None, :] < lengths[:, None]
    person0 = out[..., 0].transpose(0, 2, 3, 1)[frames]  # (valid frames, V, C)
    given = kinect[..., 0].transpose(0, 2, 3, 1)[frames]
    both = (person0 != 0).any(-1) & (given != 0).any(-1)
    bones = lambda p: np.linalg.norm(p[:, 5] - p[:, 4], axis=-1)[both[:, 5] & both[:, 4]]
    np.testing.assert_allclose(bones(person0), bones(given), atol=1e-5)  # every normalisation is rigid
    if normalize == "none":
        np.testing.assert_array_equal(out, kinect)
    elif normalize in ("center", "agcn"):
        assert np.abs(person0[:, CENTRE]).max() < 1e-5  # the spine at the origin in every frame
    else:
        assert np.abs(out[:, :, 0, CENTRE, 0]).max() < 1e-6 and np.abs(person0[:, CENTRE]).max() > 0.01
    if normalize == "agcn":
        shoulders = out[:, :, 0, 8, 0] - out[:, :, 0, 4, 0]  # left -> right shoulder at frame 0 along +x
        np.testing.assert_allclose(shoulders / np.linalg.norm(shoulders, axis=1, keepdims=True), np.tile([1, 0, 0], (len(out), 1)), atol=1e-5)


def test_an_npz_names_its_joints_or_gets_a_clear_error(tmp_path, camera_skeletons):
    x, lengths = camera_skeletons
    kinect = np.ascontiguousarray(x[:, :, :, KINECT_FROM_NTU])
    bare = save_npz(tmp_path / "bare.npz", kinect, lengths)
    np.testing.assert_array_equal(loaded(bare, "none"), kinect)
    for normalize, missing in (("center", "center_joint"), ("agcn", "center_joint, spine, shoulders")):
        with pytest.raises(ConfigError, match=rf"data.normalize={normalize}: .*bare.npz .*does not name its {missing} joint"):
            loaded(bare, normalize)
    named = save_npz(
        tmp_path / "named.npz",
        kinect,
        lengths,
        bones=np.array([(j, max(j - 1, 0)) for j in range(20)]),
        center_joint=np.int64(1),
        spine=np.array([0, 1]),
        shoulders=np.array([4, 8]),
    )
    registered = save_npz(tmp_path / "registered.npz", kinect, lengths, layout="kinect_v1_20")
    np.testing.assert_allclose(loaded(named, "agcn"), loaded(registered, "agcn"), atol=1e-6)
    assert load_dataset(DataConfig(dataset=str(named))).spec(8).layout.spine == (0, 1)


def test_a_prepared_dataset_is_not_normalised_twice(tmp_path, camera_skeletons):
    x, lengths = camera_skeletons
    write_pku(tmp_path / "raw", x, lengths)
    prepare_dataset("pku2", tmp_path / "raw", tmp_path / "prepared", workers=1, max_frames=96, progress=False)
    with pytest.raises(ConfigError, match="prepared dataset, normalised by `halp-bench prepare`"):
        load_dataset(DataConfig(dataset=str(tmp_path / "prepared"), normalize="center"), check=False)  # one class: the checks would refuse it first


def test_the_setting_is_part_of_the_identity_only_when_used():
    cfg = make_config("cpu", [], method="moco")
    stored = cfg.to_dict()
    del stored["data"]["normalize"]  # a row or checkpoint written before the setting existed
    assert pretrain_id("moco", cfg) == pretrain_id("moco", stored)
    assert config_id("moco", "knn", cfg, cfg) == config_id("moco", "knn", stored, stored)
    centred = make_config("cpu", ["data.normalize=center"], method="moco")
    assert pretrain_id("moco", centred) != pretrain_id("moco", cfg) and config_id("moco", "knn", centred, centred) != config_id("moco", "knn", cfg, cfg)
    with pytest.raises(ConfigError, match="data.normalize=rotate: choose one of none, center, center_first, agcn"):
        make_config("cpu", ["data.normalize=rotate"], method="moco")


def test_cells_of_each_normalisation_are_trained_and_labelled_apart(tmp_path, camera_skeletons):
    x, lengths = camera_skeletons
    rng = np.random.default_rng(0)
    many = np.concatenate([x] * 4)[rng.permutation(16)]
    many = many * (1 + 0.01 * rng.normal(size=(16, 1, 1, 1, 1)))  # copies that differ: a test part repeating training is refused
    npz = save_npz(tmp_path / "kinect.npz", np.ascontiguousarray(many[:, :, :, KINECT_FROM_NTU]), np.concatenate([lengths] * 4), layout="kinect_v1_20")
    for normalize in ("none", "center", "center_first", "agcn"):
        spec = RunSpec(
            methods=["moco"],
            dataset=str(npz),
            protocols=["knn"],
            preset="cpu",
            out=tmp_path / "out",
            show_progress=False,
            overrides=[*tiny_overrides("moco"), f"data.normalize={normalize}"],
        )
        assert [o.status for o in run_grid(spec, say=lambda _: None)] == ["ran"]
    rows = read_rows(tmp_path / "out" / "results.jsonl")
    assert len({row.config_id for row in rows}) == 4 and len({row.run_dir for row in rows}) == 4
    assert [row.settings["normalize"] for row in rows] == ["none", "center", "center_first", "agcn"]
    (knn,) = build_tables(rows, ("knn",))
    labels = [label for label, _ in knn.rows]
    assert "moco [data.normalize=agcn]" in labels and "moco [data.normalize=none]" in labels
    assert "data normalisation none (moco [data.normalize=none]), center (moco [data.normalize=center]), center_first (" in knn.notes[0]
    (alone,) = build_tables(rows[:1], ("knn",))
    assert "normalisation" not in alone.notes[0]  # the neutral value goes unsaid
