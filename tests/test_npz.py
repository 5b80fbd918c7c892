"""The generic `.npz` (bring your own data): round trip, any V and M end to end, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_overrides
from halp_bench.config import DataConfig
from halp_bench.datasets.catalog import load_dataset
from halp_bench.errors import DataError, HalpBenchError
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import LAYOUTS
from halp_bench.results.store import load_results

KINECT_V1_CHAIN = [(j, max(j - 1, 0)) for j in range(20)]


def dataset(n: int = 24, joints: int = 20, bodies: int = 1, frames: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, frames, joints, bodies)).astype(np.float32)
    length = rng.integers(frames // 2, frames + 1, size=n)
    for i, valid in enumerate(length):
        x[i, :, valid:] = 0
    split = np.zeros(n, dtype=bool)
    split[: n * 2 // 3] = True
    return {"x": x, "y": np.arange(n) % 3, "length": length, "split_mine": split, "subject": np.arange(n) % 5}


def load(path: Path, split: str = ""):
    return load_dataset(DataConfig(dataset=str(path), split=split))


def test_round_trip_with_metadata_and_a_registered_layout(tmp_path):
    arrays = dataset(joints=25, bodies=2)
    np.savez(tmp_path / "mine.npz", **arrays, layout=np.array("ntu25"), split_other=~arrays["split_mine"])
    data = load(tmp_path / "mine.npz")
    np.testing.assert_array_equal(data.data, arrays["x"])
    assert data.lengths.tolist() == arrays["length"].tolist() and data.labels.tolist() == arrays["y"].tolist()
    assert data.num_classes == 3 and data.layout == "ntu25" and data.in_channels == 150
    assert set(data.splits) == {"mine", "other"} and data.default_split == "mine"
    assert data.metadata["subject"].tolist() == arrays["subject"].tolist()
    train, test = data.split("other")
    assert len(train) == 8 and len(test) == 16


def test_bones_register_a_layout_once_and_lengths_default_to_the_last_nonzero_frame(tmp_path):
    arrays = dataset()
    del arrays["length"]
    np.savez(tmp_path / "kinect.npz", **arrays, bones=np.array(KINECT_V1_CHAIN), num_classes=np.array(7))
    first, second = load(tmp_path / "kinect.npz"), load(tmp_path / "kinect.npz")
    assert first.layout == second.layout and first.layout.startswith("npz:kinect:")
    layout = LAYOUTS.get(first.layout)
    assert layout.num_joints == 20 and layout.bones == tuple(KINECT_V1_CHAIN)
    assert first.num_classes == 7
    expected = [int(np.flatnonzero(x.any(axis=(0, 2, 3)))[-1]) + 1 for x in arrays["x"]]
    assert first.lengths.tolist() == expected


def test_20_joints_1_body_runs_moco_end_to_end(tmp_path, monkeypatch):
    np.savez(tmp_path / "kinect.npz", **dataset(), bones=np.array(KINECT_V1_CHAIN))
    monkeypatch.chdir(tmp_path)
    spec = RunSpec(
        methods=["moco"],
        dataset="kinect.npz",
        split="mine",
        protocols=["knn"],
        preset="cpu",
        overrides=tiny_overrides("moco"),
        out=tmp_path / "out",
        show_progress=False,
    )
    outcomes = run_grid(spec, say=lambda _: None)
    assert [o.status for o in outcomes] == ["ran"], outcomes
    (row,) = load_results(tmp_path / "out" / "results.jsonl")
    assert (row["dataset"], row["split"], row["method"]) == ("kinect.npz", "mine", "moco")
    assert 0.0 <= row["metrics"]["top1"] <= 100.0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("y"), "missing key 'y': expected int class labels"),
        (lambda a: a.update(y=a["y"][:-1]), "key 'y': expected 24 entries (x has N=24), found shape (23,)"),
        (lambda a: a.update(subject=a["subject"][:5]), "key 'subject': expected 24 entries"),
        (lambda a: a.update(split_mine=a["split_mine"].astype(int)), "key 'split_mine': expected a bool mask"),
        (lambda a: a.update(split_mine=np.ones(24, dtype=bool)), "key 'split_mine': expected both train and test samples, found no test"),
        (lambda a: a.pop("split_mine"), "expected at least one bool key 'split_<name>'"),
        (lambda a: a.update(y=a["y"] - 1), "key 'y': expected labels in 0..num_classes-1, found -1"),
        (lambda a: a.update(num_classes=np.array(2)), "key 'y': expected labels in 0..1 (num_classes), found 2"),
        (lambda a: a.update(y=a["y"].astype(float)), "key 'y': expected int class labels, found float64"),
        (lambda a: a.update(x=a["x"][0]), "key 'x': expected float (N, C, T, V, M)"),
        (lambda a: a.update(length=a["length"] + 12), "key 'length': expected int frame counts in 1..12"),
        (lambda a: a.update(layout=np.array("ntu25")), "key 'layout': ntu25 has 25 joints but x has V=20"),
        (lambda a: a.update(layout=np.array("nosuch")), "key 'layout': expected a registered layout name"),
        (lambda a: a.update(bones=np.array([[0, 20]])), "key 'bones': expected 0-based joints in 0..19"),
        (lambda a: a.update(bones=np.array([[1, 0], [1, 2]])), "key 'bones': expected each joint at most once"),
    ],
)
def test_bad_input_names_the_file_and_key(tmp_path, change, message):
    arrays = dataset()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as info:
        load(tmp_path / "bad.npz")
    assert str(info.value).startswith(f"{tmp_path / 'bad.npz'}: ") and message in str(info.value)


def test_unknown_split_and_missing_file_are_clear(tmp_path):
    np.savez(tmp_path / "mine.npz", **dataset())
    with pytest.raises(HalpBenchError, match=r"mine.npz' has no split 'nope'; choose one of: mine"):
        load(tmp_path / "mine.npz").split("nope")
    with pytest.raises(DataError, match="nosuch.npz: file not found"):
        load(tmp_path / "nosuch.npz")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "halp_bench.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_cli_bad_npz_is_one_line_exit_2(tmp_path):
    arrays = dataset()
    np.savez(tmp_path / "good.npz", **arrays)
    del arrays["y"]
    np.savez(tmp_path / "bad.npz", **arrays)
    for args, expected in (
        (["--dataset", "bad.npz"], "bad.npz: missing key 'y'"),
        (["--dataset", "good.npz", "--split", "nope"], "good.npz' has no split 'nope'; choose one of: mine"),
    ):
        result = _cli("run", *args, "--methods", "random", "--protocols", "knn", "--out", "out", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
