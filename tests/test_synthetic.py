"""The built-in synthetic dataset: deterministic, well-formed, and of the documented difficulty."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from halp_bench.config import DataConfig
from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.synthetic import (
    MIRROR,
    PROGRAMS,
    SOURCE_CLASSES,
    TARGET_CLASSES,
    TARGET_SPEC,
    SyntheticSpec,
    load_synthetic,
    make_synthetic,
    raw_pose_knn_accuracy,
    resize_valid,
)
from halp_bench.registry import DATASETS

# The documented band of raw-pose cosine 1-NN accuracy (module docstring).
BAND = (0.30, 0.70)


@pytest.fixture(scope="module")
def source() -> SkeletonData:
    return DATASETS.get("synthetic")(DataConfig())


@pytest.fixture(scope="module")
def target() -> SkeletonData:
    return DATASETS.get("synthetic-target")(DataConfig())


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    spec = SyntheticSpec(num_samples=120)
    a, b, c = make_synthetic(spec, 3), make_synthetic(spec, 3), make_synthetic(spec, 4)
    for key in ("data", "lengths", "labels"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    np.testing.assert_array_equal(a.metadata["subject"], b.metadata["subject"])
    assert not np.array_equal(a.data, c.data)


def test_shapes_dtypes_and_layout(source: SkeletonData) -> None:
    spec = SyntheticSpec()
    assert source.shape == (1800, 3, spec.max_frames, 25, 2)
    assert source.data.dtype == np.float32 and np.isfinite(source.data).all()
    assert source.layout == "ntu25" and source.num_classes == len(SOURCE_CLASSES) == 10
    assert source.labels.dtype == np.int64 and set(source.labels) == set(range(10))
    assert np.bincount(source.labels).min() == np.bincount(source.labels).max()  # balanced
    assert spec.min_frames <= source.lengths.min() and source.lengths.max() <= spec.max_frames
    assert source.lengths.min() < source.lengths.max()


def test_zero_padded_after_each_length(source: SkeletonData) -> None:
    frames = np.arange(source.shape[2])
    after = frames[None, :] >= source.lengths[:, None]  # (N, T)
    magnitude = np.abs(source.data).sum(axis=(1, 3))  # (N, T, M)
    assert (magnitude[after] == 0).all()
    last = magnitude[np.arange(len(magnitude)), source.lengths - 1, 0]
    assert (last > 0).all() and (magnitude[..., 0][~after] > 0).all()


def test_second_body_only_in_two_person_classes(source: SkeletonData, target: SkeletonData) -> None:
    for data, classes in ((source, SOURCE_CLASSES), (target, TARGET_CLASSES)):
        pair = np.array([PROGRAMS[name][1] for name in classes])[data.labels]
        assert pair.any() and (~pair).any()
        second = np.abs(data.data[..., 1]).sum(axis=(1, 3))  # (N, T)
        valid = np.arange(data.shape[2])[None, :] < data.lengths[:, None]
        assert (second[~pair] == 0).all()
        assert (second[pair][valid[pair]] > 0).all()


def test_splits_disjoint_subjects_and_views(source: SkeletonData, target: SkeletonData) -> None:
    for data in (source, target):
        assert data.default_split == "xsub" and set(data.splits) == {"xsub", "xview"}
        subject, view = data.metadata["subject"], data.metadata["view"]
        xsub = data.splits["xsub"]
        assert not set(subject[xsub]) & set(subject[~xsub])
        assert len(set(subject[xsub])) == len(set(subject[~xsub])) == len(set(subject)) // 2
        xview = data.splits["xview"]
        assert set(view[xview]) == {2, 3} and set(view[~xview]) == {1}
        for name in ("xsub", "xview"):
            train, test = data.split(name)
            assert set(train.labels) == set(test.labels) == set(range(data.num_classes))


def test_target_is_another_dataset(source: SkeletonData, target: SkeletonData) -> None:
    assert not set(SOURCE_CLASSES) & set(TARGET_CLASSES)
    assert set(TARGET_SPEC.view_yaw_deg).isdisjoint(SyntheticSpec().view_yaw_deg)
    assert target.shape[1:] == source.shape[1:] and target.layout == source.layout
    assert target.name == "synthetic-target" and source.name == "synthetic"


def test_registered_loaders_are_cached_read_only_and_sized(source: SkeletonData) -> None:
    again = DATASETS.get("synthetic")(DataConfig())
    assert again.data is source.data and again is not source  # one generation, fresh containers
    assert not source.data.flags.writeable
    small = DATASETS.get("synthetic")(DataConfig(synthetic_samples=50))
    assert len(small.data) == 50


def test_load_synthetic_matches_the_pure_generator() -> None:
    spec = SyntheticSpec(num_samples=60)
    np.testing.assert_array_equal(load_synthetic(spec, 5).data, make_synthetic(spec, 5).data)


def test_unknown_motion_program_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown synthetic motion programs"):
        make_synthetic(dataclasses.replace(SyntheticSpec(num_samples=10), classes=("moonwalk",)))


def test_mirror_swaps_left_and_right_joints() -> None:
    np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(25))
    assert MIRROR[4] == 8 and MIRROR[0] == 0  # left shoulder <-> right shoulder; spine stays


def test_resize_valid_keeps_the_ends() -> None:
    x = np.zeros((1, 3, 10, 25, 2), dtype=np.float32)
    x[0, 0, :7, 0, 0] = np.arange(7)
    out = resize_valid(x, np.array([7]), frames=4)
    np.testing.assert_allclose(out[0, 0, :, 0, 0], [0.0, 2.0, 4.0, 6.0])


@pytest.mark.parametrize("split", ["xsub", "xview"])
def test_raw_pose_knn_is_in_the_documented_band(source: SkeletonData, target: SkeletonData, split: str) -> None:
    for data in (source, target):
        accuracy = raw_pose_knn_accuracy(data, split)
        assert BAND[0] <= accuracy <= BAND[1], (data.name, split, accuracy)
        assert accuracy > 2.0 / data.num_classes  # there is structure to find
