"""The command line: one clear line and exit code 2 for user errors, working list/table."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "halp_bench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--methods", "nosuch"], "unknown method 'nosuch'; choose one of:"),
        (["run", "--dataset", "nosuch"], "unknown dataset 'nosuch'; choose one of:"),
        (["run", "--protocols", "nosuch"], "unknown protocol 'nosuch'"),
        (["run", "--split", "nosuch", "--methods", "random"], "has no split 'nosuch'; choose one of:"),
        (["run", "--set", "method.nope=1"], "unknown key 'nope'"),
        (["run", "--set", "method.temperature=hot"], "expected float"),
        (["run", "--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, expected):
    result = _cli(*args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # one message (rich may wrap a long line)


def test_bad_preset_is_rejected_by_the_parser(tmp_path):
    result = _cli("run", "--preset", "fast", cwd=tmp_path)
    assert result.returncode == 2 and "fast" in result.stderr and "Traceback" not in result.stderr


def test_list_shows_every_kind():
    result = _cli("list")
    assert result.returncode == 0
    for word in ("moco", "random", "bigru", "synthetic", "knn", "linear", "ntu25", "paper", "cpu"):
        assert word in result.stdout


def test_table_without_results_is_a_clear_error(tmp_path):
    result = _cli("table", "--out", str(tmp_path))
    assert result.returncode == 2 and "no results file" in result.stderr


def test_run_trains_the_st_gcn_family_methods_end_to_end(tmp_path):
    from conftest import tiny_overrides
    from halp_bench.results.store import load_results

    methods = ("skeletonclr", "crossclr", "crossclr_b")
    sets = [arg for item in tiny_overrides(*methods) for arg in ("--set", item)]
    result = _cli(
        "run",
        "--methods",
        ",".join(methods),
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        "--dataset",
        "synthetic",
        "--set",
        "data.synthetic_samples=60",
        *sets,
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["method"]: r for r in load_results(tmp_path / "out" / "results.jsonl")}
    assert sorted(rows) == sorted(methods)
    assert rows["crossclr"]["config"]["augment"] == {"shear_amplitude": 0.5, "temporal_padding_ratio": 6, "relative": True}
    assert "crop_min_scale" in rows["crossclr_b"]["config"]["augment"]  # CMD's views


def test_the_field_and_the_paper_methods_run_on_20_joints_of_one_person_and_halp_on_st_gcn(tmp_path):
    """A user's `.npz` (Kinect v1, 20 joints, 1 person): every family runs on it, AimCLR's flip
    included (the layout knows its mirror); HaLP trains the ST-GCN encoder when asked to."""
    import numpy as np

    from conftest import tiny_overrides
    from halp_bench.results.store import load_results

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3, 12, 20, 1)).astype(np.float32)
    split = np.arange(30) < 20
    np.savez(tmp_path / "kinect.npz", x=x, y=np.arange(30) % 3, length=np.full(30, 12), split_mine=split, layout=np.array("kinect_v1_20"))
    methods = ("skeletonclr", "crossclr", "aimclr", "moco", "halp")
    sets = [arg for item in tiny_overrides(*methods) for arg in ("--set", item)]
    result = _cli(
        "run",
        "--methods",
        ",".join(methods),
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        "--dataset",
        str(tmp_path / "kinect.npz"),
        *sets,
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["method"]: r for r in load_results(tmp_path / "out" / "results.jsonl")}
    assert sorted(rows) == sorted(methods) and rows["aimclr"]["config"]["encoder"]["name"] == "stgcn"
    sets = [arg for item in tiny_overrides("halp", encoder="stgcn") for arg in ("--set", item)]
    result = _cli(
        "run",
        "--methods",
        "halp",
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        "--set",
        "data.synthetic_samples=60",
        *sets,
        "--out",
        str(tmp_path / "stgcn"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (row,) = load_results(tmp_path / "stgcn" / "results.jsonl")
    assert row["config"]["encoder"]["name"] == "stgcn" and 0 <= row["metrics"]["top1"] <= 100
