"""A corpus of bad inputs (options, data files, checkpoints, output directories, training that
diverges): each is exit code 2 and one line naming the culprit, never a traceback.

The CLI runs in this process through `halp_bench.cli.main` (the console script's entry point) to
keep the corpus fast; one case runs as a real subprocess. More malformed data files are covered by
test_npz.py, test_imported.py and test_prepare.py; a few representative ones are here.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from halp_bench.cli import main
from halp_bench.config import make_config
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.orchestration.run_dirs import run_dir_name

SETS = [arg for item in tiny_overrides("moco") if not item.startswith("device=") for arg in ("--set", item)] + ["--device", "cpu"]


class WritesMarker:
    """Unpickling this would create the marker file if the loader ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A folder with a good generic .npz dataset and a finished moco run (knn) on it in base/."""
    root = tmp_path_factory.mktemp("bad-inputs")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3, 12, 25, 1)).astype(np.float32)
    np.savez(root / "good.npz", x=x, y=np.arange(24) % 3, split_all=np.arange(24) < 16)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    spec = RunSpec(
        methods=["moco"],
        dataset=str(root / "good.npz"),
        protocols=["knn"],
        preset="cpu",
        overrides=tiny_overrides("moco"),
        out=root / "base",
        show_progress=False,
    )
    assert [o.status for o in run_grid(spec, say=lambda _: None)] == ["ran"]
    torch.set_num_threads(threads)
    return root


def run_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--dataset",
        str(data / "good.npz"),
        "--methods",
        "moco",
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        *SETS,
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def copy_base(data: Path, tmp: Path) -> Path:
    """A copy of the finished moco run; returns its checkpoint (tampered with by the cases)."""
    shutil.copytree(data / "base", tmp / "out")
    (run_dir,) = (tmp / "out" / "runs").glob("moco_*")
    return run_dir / "checkpoint.pt"


def needs_checkpoint(data: Path, tmp: Path, change: Callable[[Path], object]) -> list[str]:
    """`change` the copied checkpoint, then ask for a protocol that needs the pretrained model."""
    change(copy_base(data, tmp))
    return run_args(data, tmp / "out", "--protocols", "linear")


def edited(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)

    return edit


def other_method(data: Path, tmp: Path) -> list[str]:
    """moco's checkpoint where halp's would be."""
    checkpoint = copy_base(data, tmp)
    halp = make_config("cpu", [*tiny_overrides("halp"), f"data.dataset={data / 'good.npz'}", "data.split=all"], method="halp")
    halp_dir = checkpoint.parent.with_name(run_dir_name("halp", halp))
    halp_dir.mkdir()
    shutil.copy(checkpoint, halp_dir / "checkpoint.pt")
    return run_args(data, tmp / "out", "--methods", "halp", *(arg for item in tiny_overrides("halp") for arg in ("--set", item)))


def dataset_file(name: str, write: Callable[[Path], object]) -> Callable[[Path, Path], list[str]]:
    def setup(data: Path, tmp: Path) -> list[str]:
        write(tmp / name)
        return run_args(data, tmp / "o") + ["--dataset", str(tmp / name)]

    return setup


def out_path(relative: str) -> Callable[[Path, Path], list[str]]:
    def setup(data: Path, tmp: Path) -> list[str]:
        (tmp / "file").write_text("a regular file")
        return run_args(data, tmp / relative)

    return setup


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def evil(marker_dir: Path) -> WritesMarker:
    return WritesMarker(marker_dir / "marker")


# Each case: (setup(data, tmp) -> CLI args, what the one line must say). Setups may write files;
# anything that would run code from a file creates tmp/marker.
CASES: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    # --- options ---
    "unknown method": (lambda d, t: run_args(d, t / "o", "--methods", "nosuch"), "unknown method 'nosuch'; choose one of:"),
    "unknown dataset": (lambda d, t: ["run", "--dataset", "nosuch", "--out", str(t / "o")], "unknown dataset 'nosuch'; choose one of:"),
    "unknown split": (lambda d, t: run_args(d, t / "o", "--split", "nope"), "good.npz' has no split 'nope'; choose one of: all"),
    "unknown protocol": (lambda d, t: run_args(d, t / "o", "--protocols", "nosuch"), "unknown protocol 'nosuch'"),
    "unknown preset": (lambda d, t: run_args(d, t / "o", "--preset", "fast"), "Invalid value for '--preset': 'fast' is not one of"),
    "unknown --set key": (lambda d, t: run_args(d, t / "o", "--set", "method.nope=1"), "--set 'method.nope': unknown key 'nope'"),
    "bad --set value type": (lambda d, t: run_args(d, t / "o", "--set", "pretrain.lr=fast"), "--set pretrain.lr=fast: expected float"),
    "--set without =": (lambda d, t: run_args(d, t / "o", "--set", "pretrain.lr"), "--set 'pretrain.lr': expected KEY=VALUE"),
    "bad --seeds": (lambda d, t: run_args(d, t / "o", "--seeds", "0,x"), "Invalid value for '--seeds': '0,x': expected comma-separated integers"),
    "unknown device": (lambda d, t: run_args(d, t / "o", "--device", "tpu"), "unknown device 'tpu'"),
    "negative checkpoint interval": (
        lambda d, t: run_args(d, t / "o", "--set", "checkpoint_every_iters=-1"),
        "--set checkpoint_every_iters=-1: expected a whole number >= 0",
    ),
    # --- data files and arrays ---
    "dataset file missing": (dataset_file("nosuch.npz", lambda p: None), "nosuch.npz: file not found"),
    "npz missing a key": (
        dataset_file("bad.npz", lambda p: np.savez(p, x=np.zeros((4, 3, 8, 25, 1), np.float32))),
        "bad.npz: missing key 'y': expected int class labels",
    ),
    "npz object array": (
        dataset_file("evil.npz", lambda p: np.savez(p, x=np.array([evil(p.parent)], dtype=object), y=np.zeros(1))),
        "evil.npz: key 'x' holds Python objects (dtype=object), which are refused",
    ),
    "not a dataset format": (dataset_file("notes.txt", lambda p: p.write_text("hi")), "notes.txt: not a dataset format halp-bench reads"),
    # --- output directory ---
    "--out is a file": (out_path("file"), "file: the output directory (--out) is a file"),
    "--out under a file": (out_path("file/out"), "file/out: cannot write the output directory (--out): Not a directory"),
    # --- checkpoints: the run's own one, tampered with, reached by a protocol that needs the model ---
    "checkpoint of another method": (other_method, "was made by method 'moco', not 'halp'; use another --out or --force"),
    "checkpoint with other settings": (
        lambda d, t: needs_checkpoint(d, t, edited(lambda s: s["config"]["method"].update(temperature=0.5))),
        "checkpoint.pt: was made with other pretraining settings (method.temperature: checkpoint 0.5 vs now 0.07)",
    ),
    "checkpoint of an older format": (
        lambda d, t: needs_checkpoint(d, t, edited(lambda s: s.update(format=1))),
        "checkpoint.pt: checkpoint format 1 is not 3 (written by another halp-bench version",
    ),
    "truncated checkpoint": (
        lambda d, t: needs_checkpoint(d, t, truncate),
        "checkpoint.pt: is corrupt or truncated (PytorchStreamReader failed reading zip archive",
    ),
    "checkpoint that would run code": (
        lambda d, t: needs_checkpoint(d, t, lambda p: torch.save({"format": 2, "model": evil(t)}, p)),
        "checkpoint.pt: refused to load: it asks for 'posix.system', which is not a tensor or plain data (loading it could run code)",
    ),
    "plain pickle as checkpoint": (
        lambda d, t: needs_checkpoint(d, t, lambda p: p.write_bytes(pickle.dumps({"model": evil(t)}))),
        "checkpoint.pt: refused to load: not a checkpoint of tensors and plain data",
    ),
    # --- training ---
    "loss becomes NaN": (
        lambda d, t: run_args(d, t / "o", "--set", "pretrain.lr=1e30"),
        "error: moco: loss 'contrastive_joint' is nan at epoch 1, iteration 1; no checkpoint had been written yet",
    ),
}


def cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["halp-bench", *args])
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_exit_2_and_one_line_naming_the_culprit(case, data, tmp_path, monkeypatch, capsys, one_thread):
    setup, expected = CASES[case]
    args = setup(data, tmp_path)
    code, _, err = cli(args, monkeypatch, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and expected in err, err
    assert not (tmp_path / "marker").exists()  # nothing in a file ran


def test_a_full_disk_while_checkpointing_is_one_line(data, tmp_path, monkeypatch, capsys, one_thread):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    code, _, err = cli(run_args(data, tmp_path / "o"), monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "checkpoint.pt: cannot write (No space left on device); is the disk full or the directory read-only?" in err
    assert not list((tmp_path / "o" / "runs").glob("*/.checkpoint.pt.*"))  # no temporary file left behind


def test_the_real_entry_point_refuses_a_malicious_checkpoint_in_one_line(data, tmp_path):
    checkpoint = copy_base(data, tmp_path)
    torch.save({"model": evil(tmp_path)}, checkpoint)
    result = subprocess.run(
        [sys.executable, "-m", "halp_bench.cli", *run_args(data, tmp_path / "out", "--protocols", "linear")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "300", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {checkpoint}: refused to load: it asks for 'posix.system', which is not a tensor or plain data (loading it could run code)"
    ]
    assert not (tmp_path / "marker").exists()
