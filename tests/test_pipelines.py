"""The three data pipelines against a literal transcription of each family's preprocessing.

The references below are written the way the authors' code runs (loops, one frame and one joint
at a time, their own text reader), independently of `datasets/pipelines.py`:
- ST-GCN family: CrosSCLR `tools/utils/ntu_read_skeleton.py::read_xyz` (max_body=2, bodies in file
  order) and `feeder/NTUDatasets.py` (get_length, relative to joint 21, cv2 INTER_LINEAR resize to 50,
  `parallel_skeleton`);
- AGCN: 2s-AGCN `data_gen/ntu_gendata.py` (max_body=4, the 2 of highest `get_nonzero_std`) and
  `preprocess.py::pre_normalization`;
- MAMP: CTR-GCN `seq_transformation.py::seq_translation` on the chosen bodies.
The raw files are the shared NTU fixtures plus one built here with a third, motionless body listed
first, so that file order and motion energy choose different bodies.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from halp_bench.config import DataConfig
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.formats.prepared_dir import load_prepared
from halp_bench.datasets.pipelines import apply_pipeline, resolve_pipeline
from halp_bench.datasets.raw.prepare import prepare_dataset
from halp_bench.errors import ConfigError

HERE = Path(__file__).resolve()
CANDIDATES = [
    Path(os.environ.get("HALP_BENCH_FIXTURES", "/nonexistent")),
    HERE.parents[1].parent / "shared" / "fixtures" / "ntu",
    HERE.parents[2].parent / "shared" / "fixtures" / "ntu",
]
FIXTURES = next((p for p in CANDIDATES if p.is_dir()), CANDIDATES[-1])
NAMES = ["S001C001P001R001A011", "S001C003P008R002A058", "S004C002P003R001A017"]
BUILT = "S002C001P007R001A059"  # three bodies: a motionless one listed first
MISSING_LIST = "NTU_RGBD_samples_with_missing_skeletons.txt"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"NTU fixtures not found at {FIXTURES}")


def add_still_body_first(source: Path, target: Path) -> None:
    """A copy of `source` where every frame lists first a body frozen at its first body's frame-0 pose."""
    lines = source.read_text().splitlines()
    frames, pos, out = int(lines[0]), 1, [lines[0]]
    first = lines[2 : 2 + 27]  # body line, joint count, 25 joints of frame 0's first body
    for _ in range(frames):
        count = int(lines[pos])
        out += [str(count + 1), *first]
        out += lines[pos + 1 : pos + 1 + 27 * count]
        pos += 1 + 27 * count
    target.write_text("\n".join(out) + "\n")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipelines")
    raw = root / "raw"
    raw.mkdir()
    for name in NAMES:
        (raw / f"{name}.skeleton").symlink_to(FIXTURES / f"{name}.skeleton")
    (raw / MISSING_LIST).symlink_to(FIXTURES / MISSING_LIST)
    add_still_body_first(FIXTURES / "S001C003P008R002A058.skeleton", raw / f"{BUILT}.skeleton")
    prepare_dataset("ntu60", raw, root / "ntu60", workers=1, progress=False)
    return root


# --- the authors' code, transcribed -------------------------------------------------------------


def read_xyz(path: Path, max_body: int) -> np.ndarray:
    """(3, T, 25, max_body): x, y, z of the m-th body listed in each frame."""
    lines = path.read_text().splitlines()
    frames, pos = int(lines[0]), 1
    data = np.zeros((3, frames, 25, max_body))
    for n in range(frames):
        bodies = int(lines[pos])
        pos += 1
        for m in range(bodies):
            pos += 1
            joints = int(lines[pos])
            pos += 1
            for j in range(joints):
                v = lines[pos].split()
                pos += 1
                if m < max_body and j < 25:
                    data[:, n, j, m] = [float(v[0]), float(v[1]), float(v[2])]
    return data


def stgcn_reference(path: Path) -> np.ndarray:
    """CrosSCLR's 50-frame `position` array of one sample (3, 50, 25, 2)."""
    data = np.zeros((3, 300, 25, 2), dtype=np.float32)
    xyz = read_xyz(path, 2)
    data[:, : xyz.shape[1]] = xyz
    length = (abs(data[:, :, 0, 0]).sum(axis=0) != 0).sum()
    data = data - data[:, :, 20, :].reshape([3, 300, 1, 2])
    resized = np.zeros([3, 50, 25, 2])
    for m in range(2):
        for dx in range(50):  # cv2.resize INTER_LINEAR along the frames
            fx = (dx + 0.5) * length / 50 - 0.5
            sx = int(np.floor(fx))
            fx -= sx
            if sx < 0:
                sx, fx = 0, 0.0
            if sx >= length - 1:
                sx, fx = length - 1, 0.0
            nxt = min(sx + 1, length - 1)
            resized[:, dx, :, m] = data[:, sx, :, m] * (1 - fx) + data[:, nxt, :, m] * fx
    data = resized.astype(np.float32)
    for n in range(2):  # parallel_skeleton
        person = data[:, :, :, n]
        vec = person[:, :, 8] - person[:, :, 4]
        vec[1, :] = 0
        theta = vec[0, :] / (np.sqrt(np.sum(np.square(vec), axis=0)) + 0.0001)
        thetas = np.arccos(theta) * (180 / np.pi)
        if np.sum(vec[2, :]) >= 0:
            thetas = -thetas
        for t in range(50):
            a = thetas[t] * np.pi / 180
            tm = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
            data[:, t, :, n] = np.dot(tm, person[:, t, :])
    return data


def agcn_bodies(path: Path) -> np.ndarray:
    """2s-AGCN's read: up to 4 bodies, the 2 of highest non-zero std, (3, T, 25, 2)."""
    data = read_xyz(path, 4).transpose(3, 1, 2, 0)  # (M, T, V, C)

    def nonzero_std(s):
        s = s[s.sum(-1).sum(-1) != 0]
        return s[:, :, 0].std() + s[:, :, 1].std() + s[:, :, 2].std() if len(s) else 0

    energy = np.array([nonzero_std(body) for body in data])
    return data[energy.argsort()[::-1][0:2]].transpose(3, 1, 2, 0)


def rotation_matrix(axis, theta):
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis) / np.sqrt(np.dot(axis, axis))
    a = np.cos(theta / 2.0)
    b, c, d = -axis * np.sin(theta / 2.0)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
            [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
            [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
        ]
    )


def angle_between(v1, v2):
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0
    u1, u2 = v1 / np.linalg.norm(v1), v2 / np.linalg.norm(v2)
    return np.arccos(np.clip(np.dot(u1, u2), -1.0, 1.0))


def agcn_reference(path: Path) -> np.ndarray:
    """`pre_normalization` of the sample (3, 300, 25, 2); the null-frame padding is left out (the
    fixtures have none inside their length; the harness keeps zeros after it)."""
    data = np.zeros((3, 300, 25, 2), dtype=np.float32)
    bodies = agcn_bodies(path)
    data[:, : bodies.shape[1]] = bodies
    s = data.transpose(3, 1, 2, 0).copy()  # (M, T, V, C)
    centre = s[0][:, 1:2, :].copy()
    for p in range(2):
        if s[p].sum() == 0:
            continue
        mask = (s[p].sum(-1) != 0).reshape(300, 25, 1)
        s[p] = (s[p] - centre) * mask
    for bone, target in (((0, 1), [0, 0, 1]), ((4, 8), [1, 0, 0])):
        vector = s[0, 0, bone[1]] - s[0, 0, bone[0]]
        matrix = rotation_matrix(np.cross(vector, target), angle_between(vector, target))
        for p in range(2):
            for f in range(300):
                if s[p, f].sum() == 0:
                    continue
                for j in range(25):
                    s[p, f, j] = np.dot(matrix, s[p, f, j])
    return s.transpose(3, 1, 2, 0)


def mamp_reference(path: Path) -> np.ndarray:
    """`seq_translation` of the chosen bodies as (T, 150) rows, back to (3, T, 25, 2)."""
    bodies = agcn_bodies(path)
    joints = bodies.transpose(1, 3, 2, 0).reshape(bodies.shape[1], 150).astype(np.float32)
    joints = joints[(joints != 0).any(axis=1)]
    two = (joints[:, 75:] != 0).any()
    if not two:
        joints = joints[:, :75]
    missing = [np.where(joints[:, k : k + 75].sum(axis=1) == 0)[0] for k in (0, 75)] if two else []
    i = 0
    while not np.any(joints[i, :75] != 0):
        i += 1
    origin = np.copy(joints[i, 3:6])
    for f in range(len(joints)):
        joints[f] -= np.tile(origin, 50 if two else 25)
    for k, frames in zip((0, 75), missing):
        joints[frames, k : k + 75] = 0
    if not two:
        joints = np.hstack([joints, np.zeros_like(joints)])
    return joints.reshape(len(joints), 2, 25, 3).transpose(3, 0, 2, 1)


# --- the tests -----------------------------------------------------------------------------------


def load(root: Path, pipeline: str):
    return load_dataset(DataConfig(dataset=str(root / "ntu60"), pipeline=pipeline), check=False)


def test_prepare_keeps_raw_coordinates_and_every_body_in_file_order(prepared):
    raw = load_prepared(prepared / "ntu60")
    assert raw.stored == "raw" and raw.shape[-1] == 4
    built = raw.names.index(BUILT)
    expected = read_xyz(prepared / "raw" / f"{BUILT}.skeleton", 4)
    np.testing.assert_array_equal(raw.data[built, :, :70], expected.astype(np.float32))
    assert (raw.metadata["agcn_body0"][built], raw.metadata["agcn_body1"][built]) in {(1, 2), (2, 1)}


@pytest.mark.parametrize("name", [*NAMES, BUILT])
def test_stgcn_pipeline_equals_the_st_gcn_family_preprocessing(prepared, name, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    data = load(prepared, "stgcn")
    i = data.names.index(name)
    reference = stgcn_reference(prepared / "raw" / f"{name}.skeleton")
    assert data.shape[2] == 50 and data.lengths[i] == 50
    np.testing.assert_allclose(data.data[i], reference, atol=2e-5)
    # axes: y stays the camera's vertical (the spine goes up in y), the shoulders lie along x
    spine = data.data[i, :, :, 20, 0] - data.data[i, :, :, 0, 0]
    assert (np.abs(spine[1]) > np.abs(spine[2])).mean() > 0.9
    # the shoulders lie along x in most frames (the angle's sign is chosen once per person, so a
    # frame whose shoulder vector has the other z sign is turned the wrong way, as in their code)
    assert np.median(np.abs(data.data[i, 2, :, 8, 0] - data.data[i, 2, :, 4, 0])) < 1e-3


def test_stgcn_keeps_the_first_two_bodies_in_file_order(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    data = load(prepared, "stgcn")
    still = np.asarray(data.data[data.names.index(BUILT), :, :, :, 0])
    np.testing.assert_allclose(still, np.broadcast_to(still[:, :1], still.shape), atol=1e-5)  # the motionless body, listed first, is person 0


@pytest.mark.parametrize("name", [*NAMES, BUILT])
def test_agcn_pipeline_equals_the_2s_agcn_preprocessing(prepared, name, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    data = load(prepared, "agcn")
    i = data.names.index(name)
    length = data.lengths[i]
    reference = agcn_reference(prepared / "raw" / f"{name}.skeleton")
    np.testing.assert_allclose(data.data[i, :, :length], reference[:, :length], atol=2e-5)
    assert data.shape[-1] == 2 and not data.data[i, :, length:].any()


def test_agcn_chooses_the_two_most_active_bodies(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    data = load(prepared, "agcn")
    i = data.names.index(BUILT)
    assert np.abs(np.diff(data.data[i, :, :70], axis=1)).sum(axis=(0, 1, 2)).min() > 0.1  # both persons move


@pytest.mark.parametrize("name", [*NAMES, BUILT])
def test_mamp_pipeline_equals_the_ctr_gcn_translation(prepared, name, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    data = load(prepared, "mamp")
    i = data.names.index(name)
    reference = mamp_reference(prepared / "raw" / f"{name}.skeleton")
    length = reference.shape[1]
    assert data.lengths[i] == length
    np.testing.assert_allclose(data.data[i, :, :length], reference, atol=1e-5)
    assert not data.data[i, :, length:].any()


def test_pipeline_output_is_cached_and_identical(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    first = load(prepared, "stgcn")
    assert len(list((tmp_path / "pipelines").glob("*-stgcn-*.npy"))) == 2  # values and lengths
    second = load(prepared, "stgcn")
    assert isinstance(second.data, np.memmap) and second.files == first.files
    np.testing.assert_array_equal(np.asarray(first.data), np.asarray(second.data))


def test_in_memory_data_and_what_cannot_be_applied(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("HALP_BENCH_CACHE", str(tmp_path))
    synthetic = load_dataset(DataConfig(dataset="synthetic", synthetic_samples=20), check=False)
    assert apply_pipeline(synthetic, "auto") is synthetic and apply_pipeline(synthetic, "given") is synthetic
    moved = apply_pipeline(synthetic, "stgcn")
    assert moved.shape[2] == 50 and not np.shares_memory(moved.data, synthetic.data)
    np.testing.assert_allclose(moved.data[:, :, :, 20], 0, atol=1e-6)
    done = apply_pipeline(moved, "stgcn")
    assert done is moved
    with pytest.raises(ConfigError, match="already prepared by the stgcn pipeline"):
        apply_pipeline(moved, "agcn")
    with pytest.raises(ConfigError, match="choose one"):
        load_dataset(DataConfig(dataset="synthetic", synthetic_samples=20, pipeline="agcn", normalize="center"), check=False)


def test_auto_resolves_to_the_family_pipeline_on_raw_prepared_data_only():
    assert resolve_pipeline("auto", "stgcn", "raw", common_protocol=False) == "stgcn"
    assert resolve_pipeline("auto", "stgcn", "raw", common_protocol=True) == "agcn"
    assert resolve_pipeline("auto", "stgcn", "given", common_protocol=False) == "auto"
    assert resolve_pipeline("mamp", "stgcn", "given", common_protocol=True) == "mamp"
