"""The AGCN/CMD and CTR-GCN formats round-trip, and files from strangers run no code when opened."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from halp_bench.config import DataConfig
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.formats.safe_load import load_plain_pickle
from halp_bench.errors import DataError


def load(path: Path):
    return load_dataset(DataConfig(dataset=str(path)))


def skeletons(n: int, rng: np.random.Generator, frames: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, frames, 25, 2) float32 zero after random lengths, and the lengths."""
    x = rng.normal(size=(n, 3, frames, 25, 2)).astype(np.float32)
    lengths = rng.integers(5, frames + 1, size=n)
    for i, length in enumerate(lengths):
        x[i, :, length:] = 0
    return x, lengths


def write_agcn(folder: Path, *, num_frame: bool = True, protocol: int = pickle.DEFAULT_PROTOCOL) -> dict[str, tuple]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    parts = {}
    for part, n in (("train", 6), ("val", 4)):
        x, lengths = skeletons(n, rng)
        names = [f"S001C001P00{i}R001A00{i}.skeleton" for i in range(n)]
        labels = list(rng.integers(0, 5, size=n))
        labels[0] = 4 if part == "train" else labels[0]
        np.save(folder / f"{part}_data_joint.npy", x)
        with open(folder / f"{part}_label.pkl", "wb") as handle:
            pickle.dump((names, [int(v) for v in labels]), handle, protocol=protocol)
        if num_frame:
            np.save(folder / f"{part}_num_frame.npy", lengths)
        parts[part] = (x, lengths, names, labels)
    return parts


def test_agcn_round_trip(tmp_path):
    parts = write_agcn(tmp_path / "NTU-RGB-D-60-AGCN" / "xsub")
    data = load(tmp_path / "NTU-RGB-D-60-AGCN" / "xsub")
    np.testing.assert_array_equal(data.data, np.concatenate([parts["train"][0], parts["val"][0]]))
    assert data.lengths.tolist() == [*parts["train"][1], *parts["val"][1]]
    assert data.labels.tolist() == [*parts["train"][3], *parts["val"][3]] and data.num_classes == 5
    assert data.names == parts["train"][2] + parts["val"][2]
    assert data.default_split == "xsub" and data.splits["xsub"].tolist() == [True] * 6 + [False] * 4
    assert data.layout == "ntu25"
    same = load(tmp_path / "NTU-RGB-D-60-AGCN" / "xsub" / "val_data_joint.npy")  # a data file names its folder
    np.testing.assert_array_equal(same.data, data.data)


def test_agcn_without_num_frame_uses_the_last_nonzero_frame(tmp_path):
    parts = write_agcn(tmp_path / "agcn", num_frame=False)
    assert load(tmp_path / "agcn").lengths.tolist() == [*parts["train"][1], *parts["val"][1]]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_label_pickles_with_numpy_scalars_and_arrays_load(tmp_path, protocol):
    """CMD's PKU pickles hold np.float64 labels; other tools store numpy arrays."""
    path = tmp_path / "train_label.pkl"
    with open(path, "wb") as handle:
        pickle.dump((np.array(["a", "b"]), [np.float64(3.0), np.int64(1)]), handle, protocol=protocol)
    names, labels = load_plain_pickle(path)
    assert list(names) == ["a", "b"] and [int(v) for v in labels] == [3, 1]


def test_ctrgcn_round_trip_uses_the_feeder_order(tmp_path):
    rng = np.random.default_rng(1)
    x_train, len_train = skeletons(5, rng, frames=16)
    x_test, len_test = skeletons(3, rng, frames=16)
    y_train, y_test = np.array([0, 1, 2, 3, 1]), np.array([2, 0, 3])
    # CTR-GCN stores frames as (M, V, C) flattened; its feeder undoes it with
    # reshape((N, T, 2, 25, 3)).transpose(0, 4, 1, 3, 2)
    flat = lambda x: x.transpose(0, 2, 4, 3, 1).reshape(len(x), 16, 150)
    np.savez(tmp_path / "NTU60_CS.npz", x_train=flat(x_train), y_train=np.eye(4)[y_train], x_test=flat(x_test), y_test=np.eye(4)[y_test])
    data = load(tmp_path / "NTU60_CS.npz")
    np.testing.assert_array_equal(data.data, np.concatenate([x_train, x_test]))
    assert data.labels.tolist() == [0, 1, 2, 3, 1, 2, 0, 3] and data.num_classes == 4
    assert data.lengths.tolist() == [*len_train, *len_test]
    assert data.default_split == "xsub" and data.splits["xsub"].sum() == 5
    feeder = flat(x_test).reshape((3, 16, 2, 25, 3)).transpose(0, 4, 1, 3, 2)
    np.testing.assert_array_equal(data.data[5:], feeder)


# --- files from strangers -------------------------------------------------------------------------


class WritesMarker:
    """Unpickling this would create a marker file if the loader ran code."""

    def __init__(self, marker: Path, how: str):
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "system":
            return os.system, (f"touch {self.marker}",)
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("how, refused", [("system", "posix.system"), ("open", "io.open")])
def test_malicious_label_pickle_is_refused_without_running_code(tmp_path, how, refused):
    write_agcn(tmp_path / "agcn")
    marker = tmp_path / "marker"
    with open(tmp_path / "agcn" / "val_label.pkl", "wb") as handle:
        pickle.dump((["a"], [WritesMarker(marker, how)]), handle)
    with pytest.raises(DataError) as info:
        load(tmp_path / "agcn")
    assert not marker.exists()
    message = str(info.value)
    assert "val_label.pkl" in message and f"refused to unpickle '{refused}'" in message


def test_object_arrays_are_refused_without_running_code(tmp_path):
    write_agcn(tmp_path / "agcn")
    marker = tmp_path / "marker"
    evil = np.array([WritesMarker(marker, "system")], dtype=object)
    np.save(tmp_path / "agcn" / "train_num_frame.npy", evil, allow_pickle=True)
    with pytest.raises(DataError, match=r"train_num_frame.npy: holds Python objects \(dtype=object\), which are refused"):
        load(tmp_path / "agcn")
    np.save(tmp_path / "agcn" / "train_num_frame.npy", np.arange(6))
    np.save(tmp_path / "agcn" / "val_data_joint.npy", evil, allow_pickle=True)
    with pytest.raises(DataError, match="val_data_joint.npy: holds Python objects"):
        load(tmp_path / "agcn")
    np.savez(tmp_path / "NTU60_CS.npz", x_train=evil, y_train=np.eye(2), x_test=evil, y_test=np.eye(2))
    with pytest.raises(DataError, match="NTU60_CS.npz: key 'x_train' holds Python objects"):
        load(tmp_path / "NTU60_CS.npz")
    (tmp_path / "agcn" / "val_data_joint.npy").write_bytes(pickle.dumps(WritesMarker(marker, "system")))
    with pytest.raises(DataError, match="val_data_joint.npy: is not a numpy array file but a pickle, which is refused"):
        load(tmp_path / "agcn")
    assert not marker.exists()


def test_cli_refuses_a_malicious_pickle_in_one_line(tmp_path):
    write_agcn(tmp_path / "agcn")
    marker = tmp_path / "marker"
    with open(tmp_path / "agcn" / "train_label.pkl", "wb") as handle:
        pickle.dump(WritesMarker(marker, "system"), handle)
    result = subprocess.run(
        [sys.executable, "-m", "halp_bench.cli", "run", "--dataset", "agcn", "--methods", "random", "--out", "out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train_label.pkl: refused to unpickle 'posix.system'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not marker.exists()
