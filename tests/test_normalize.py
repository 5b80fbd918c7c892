"""The official pre-normalisation: null-frame filling, centring and the two alignments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from halp_bench.datasets.raw.normalize import pre_normalize
from halp_bench.datasets.raw.ntu import read_skeleton, select_bodies
from halp_bench.skeleton import KINECT_V1_20

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "ntu"
HIP, SPINE, L_SHOULDER, R_SHOULDER = 0, 1, 4, 8


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def skeletons(rng: np.random.Generator, n: int = 4, t: int = 20) -> np.ndarray:
    """(n, 3, t, 25, 2) two-person data whose frame-0 shoulder bone is perpendicular to the
    hip->spine bone (the case where the original's two rotations keep both bones aligned)."""
    x = rng.standard_normal((n, 3, t, 25, 2)).astype(np.float32)
    for i in range(n):
        spine, up = rng.standard_normal(3), rng.standard_normal(3)
        side = np.cross(up, rng.standard_normal(3))
        x[i, :, 0, SPINE, 0] = spine
        x[i, :, 0, HIP, 0] = spine - up
        x[i, :, 0, R_SHOULDER, 0] = spine + 0.2 * up + side
        x[i, :, 0, L_SHOULDER, 0] = spine + 0.2 * up - side
    return x


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_centre_and_axes():
    rng = np.random.default_rng(0)
    out = pre_normalize(skeletons(rng))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :, :, SPINE, 0], 0, atol=1e-6)  # every frame, person 0
    up = out[:, :, 0, SPINE, 0] - out[:, :, 0, HIP, 0]
    across = out[:, :, 0, R_SHOULDER, 0] - out[:, :, 0, L_SHOULDER, 0]
    np.testing.assert_allclose(unit(up), np.tile([0, 0, 1], (len(out), 1)), atol=1e-5)
    np.testing.assert_allclose(unit(across), np.tile([1, 0, 0], (len(out), 1)), atol=1e-5)


def test_shoulders_along_x_even_when_not_perpendicular():
    x = np.random.default_rng(1).standard_normal((8, 3, 10, 25, 2)).astype(np.float32)
    out = pre_normalize(x)
    across = out[:, :, 0, R_SHOULDER, 0] - out[:, :, 0, L_SHOULDER, 0]
    np.testing.assert_allclose(unit(across), np.tile([1, 0, 0], (8, 1)), atol=1e-5)


def test_rigidly_moved_copy_normalises_to_the_same_result():
    rng = np.random.default_rng(2)
    x = skeletons(rng)
    moved = np.empty_like(x)
    for i in range(len(x)):
        rotation, shift = random_rotation(rng), rng.standard_normal(3)
        moved[i] = np.einsum("ij,jtvm->itvm", rotation, x[i]) + shift[:, None, None, None]
    np.testing.assert_allclose(pre_normalize(moved), pre_normalize(x), atol=1e-4)


def test_relative_positions_between_people_are_kept():
    rng = np.random.default_rng(3)
    x = skeletons(rng)
    out = pre_normalize(x)
    before = np.linalg.norm(x[:, :, :, :, 1] - x[:, :, :, SPINE : SPINE + 1, 0], axis=1)
    after = np.linalg.norm(out[:, :, :, :, 1], axis=1)  # person 0's spine is the origin
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)


def test_null_frames_are_filled_by_looping_as_in_the_original():
    rng = np.random.default_rng(4)
    x = skeletons(rng, n=3, t=8)
    x[..., 1] = 0  # one person only, so centred frames equal when their sources are equal
    x[0, :, 3:] = 0  # valid 0..2, then nothing: frames loop 0 1 2 0 1 2 0 1
    x[1, :, :2] = 0  # leading gap: frames 2..7 move to the front, then loop: 2..7 2 3
    x[2, :, 2] = 0  # inner gap at 2 and a tail from 5: loop 0..4 (the gap included)
    x[2, :, 5:] = 0
    out = pre_normalize(x)
    assert not out[..., 1].any()
    np.testing.assert_array_equal(out[0, :, 3:6], out[0, :, 0:3])
    np.testing.assert_array_equal(out[0, :, 6:8], out[0, :, 0:2])
    np.testing.assert_array_equal(out[1, :, 6:8], out[1, :, 0:2])
    assert out[1, :, :6, :, 0].any(axis=(0, 2)).all()
    assert not out[2, :, 2].any() and not out[2, :, 7].any()  # the gap stays, and is looped
    np.testing.assert_array_equal(out[2, :, 5:7], out[2, :, 0:2])
    # the compacted sample's frames 0..5 are the original frames 2..7, normalised on frame 2
    np.testing.assert_allclose(out[1, :, :6], pre_normalize(x[1:2, :, 2:])[0], atol=1e-6)


def test_zero_frames_joints_and_people_stay_zero():
    rng = np.random.default_rng(5)
    x = skeletons(rng, n=3, t=12)
    x[0] = 0  # an empty sample
    x[1, ..., 1] = 0  # an absent second person
    x[2, :, 4, 7, 1] = 0  # one empty joint
    out = pre_normalize(x)
    assert not out[0].any() and not out[1, ..., 1].any()
    assert not out[2, :, 4, 7, 1].any() and out[2, :, 4, 6, 1].any()


def test_lengths_keep_the_zero_padding():
    rng = np.random.default_rng(6)
    x = skeletons(rng, n=2, t=12)
    x[0, :, 5:] = 0
    lengths = np.array([8, 12])
    out = pre_normalize(x, lengths=lengths)
    assert not out[0, :, 8:].any()
    np.testing.assert_array_equal(out[0, :, 5:8], out[0, :, 0:3])  # looped only up to the length
    np.testing.assert_array_equal(out[1], pre_normalize(x[1:])[0])


def test_input_untouched_out_and_chunks():
    rng = np.random.default_rng(7)
    x = skeletons(rng, n=7)
    copy = x.copy()
    whole = pre_normalize(x)
    np.testing.assert_array_equal(x, copy)
    target = np.zeros_like(x)
    assert pre_normalize(x, out=target, chunk_size=3) is target
    np.testing.assert_array_equal(target, whole)


def test_bone_pointing_against_the_target_is_left_as_in_the_original():
    x = np.zeros((1, 3, 2, 25, 1), dtype=np.float32)
    x[0, :, :, :, 0] = np.arange(1, 26, dtype=np.float32)[None, None, :] * 0.01
    x[0, :, 0, HIP, 0] = [0, 0, 1]  # spine - hip points along -z: no rotation axis, identity
    x[0, :, 0, SPINE, 0] = [0, 0, 0.5]
    x[0, :, 0, R_SHOULDER, 0] = [1, 0, 0.5]
    x[0, :, 0, L_SHOULDER, 0] = [0, 0, 0.5]
    out = pre_normalize(x)
    np.testing.assert_allclose(out[0, :, 0, HIP, 0], [0, 0, 0.5], atol=1e-6)


def test_other_layouts_and_shapes():
    x = np.random.default_rng(8).standard_normal((2, 3, 6, 20, 2)).astype(np.float32)
    out = pre_normalize(x, KINECT_V1_20)
    np.testing.assert_allclose(out[:, :, :, KINECT_V1_20.center_joint, 0], 0, atol=1e-6)
    with pytest.raises(ValueError, match="25 joints, data has V=20"):
        pre_normalize(x)
    with pytest.raises(ValueError, match=r"\(N, 3, T, V, M\)"):
        pre_normalize(x[0])


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"NTU fixtures not found at {FIXTURES}")
def test_real_samples():
    names = ["S001C001P001R001A011", "S001C003P008R002A058", "S004C002P003R001A017"]
    data = np.zeros((3, 3, 300, 25, 2), dtype=np.float32)
    for i, name in enumerate(names):
        sample = select_bodies(read_skeleton(FIXTURES / f"{name}.skeleton").xyz)
        data[i, :, : sample.shape[1]] = sample
    out = pre_normalize(data)
    np.testing.assert_allclose(out[:, :, :, SPINE, 0], 0, atol=1e-6)
    across = out[:, :, 0, R_SHOULDER, 0] - out[:, :, 0, L_SHOULDER, 0]
    np.testing.assert_allclose(unit(across), np.tile([1, 0, 0], (3, 1)), atol=1e-5)
    up = unit(out[:, :, 0, SPINE, 0] - out[:, :, 0, HIP, 0])
    assert (up[:, 2] > 0.98).all()  # real shoulders are nearly perpendicular to the spine
    assert out[:, :, 299, :, 0].any(axis=(1, 2)).all()  # the original loops every sample up to T
    assert not out[0, ..., 1].any() and out[1, ..., 1].any()
