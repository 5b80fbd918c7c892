"""Careless or hostile input to every command: bad settings and options are refused in one line
(exit 2) before anything trains; results lines that are not rows are reported once, with file and
line, and left out while every good row is still shown; `eval` refuses broken weights and labels an
unfinished pretraining; a broken plugin is left out; no input gives a traceback."""

from __future__ import annotations

import json
import os
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
from halp_bench.orchestration.grid import RunSpec, run_grid

MOCO_SETS = [arg for item in tiny_overrides("moco") if not item.startswith("device=") for arg in ("--set", item)]
EVAL_SETS = [arg for item in tiny_overrides("moco") if not item.startswith(("pretrain.", "augment.", "device=")) for arg in ("--set", item)]


def write_npz(path: Path, joints: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.normal(size=(36, 3, 12, joints, 1)).astype(np.float32), y=np.arange(36) % 3, split_all=np.arange(36) < 24)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """d25.npz, d20.npz; results/ with `random` kNN rows of seeds 0 and 1 (no training); moco/
    with a finished tiny moco run on d25 (its checkpoint for the eval cases)."""
    root = tmp_path_factory.mktemp("refusals")
    write_npz(root / "d25.npz", 25)
    write_npz(root / "d20.npz", 20, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_grid(
            RunSpec(
                methods=["random"],
                dataset=str(root / "d25.npz"),
                protocols=["knn"],
                preset="cpu",
                seeds=[0, 1],
                overrides=tiny_overrides("random"),
                out=root / "results",
                show_progress=False,
            ),
            say=lambda _: None,
        )
        run_grid(
            RunSpec(
                methods=["moco"],
                dataset=str(root / "d25.npz"),
                protocols=["knn"],
                preset="cpu",
                overrides=tiny_overrides("moco"),
                out=root / "moco",
                show_progress=False,
            ),
            say=lambda _: None,
        )
    finally:
        torch.set_num_threads(threads)
    return root


def cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["halp-bench", *args])
    monkeypatch.setenv("COLUMNS", "400")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def checkpoint(data: Path) -> Path:
    (found,) = (data / "moco" / "runs").glob("moco_*/checkpoint.pt")
    return found


def edited_checkpoint(change: Callable[[dict], None]) -> Callable[[Path, Path], Path]:
    def make(data: Path, tmp: Path) -> Path:
        state = torch.load(checkpoint(data), weights_only=True)
        change(state)
        torch.save(state, tmp / "edited.pt")
        return tmp / "edited.pt"

    return make


def nan_weight(state: dict) -> None:
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and k.endswith("gru.weight_ih_l0"))
    state["model"][name] = state["model"][name].clone()
    state["model"][name][0, 0] = float("nan")


def run_on(data: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--dataset",
        str(data / "d25.npz"),
        "--methods",
        "moco",
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        *MOCO_SETS,
        "--device",
        "cpu",
        "--out",
        str(tmp / "o"),
        "--no-progress",
        "--threads",
        "1",
        *extra,
    ]


def eval_of(make: Callable[[Path, Path], Path], dataset: str = "d25.npz", *extra: str) -> Callable[[Path, Path], list[str]]:
    def args(data: Path, tmp: Path) -> list[str]:
        return [
            "eval",
            "--checkpoint",
            str(make(data, tmp)),
            "--dataset",
            str(data / dataset),
            "--protocols",
            "knn",
            "--preset",
            "cpu",
            *EVAL_SETS,
            "--out",
            str(tmp / "e"),
            "--no-progress",
            "--threads",
            "1",
            *extra,
        ]

    return args


def corrupt(data: Path, tmp: Path) -> Path:
    (tmp / "corrupt.pt").write_bytes(checkpoint(data).read_bytes()[:5000])
    return tmp / "corrupt.pt"


def results_dir(data: Path, tmp: Path) -> list[str]:
    (tmp / "dir").mkdir()
    return ["table", "--results", str(tmp / "dir")]


def results_file_is_dir(data: Path, tmp: Path) -> list[str]:
    (tmp / "o" / "results.jsonl").mkdir(parents=True)
    return run_on(data, tmp)


def text_file(content: bytes) -> Callable[[Path, Path], list[str]]:
    def args(data: Path, tmp: Path) -> list[str]:
        (tmp / "renamed.npz").write_bytes(content)
        return run_on(data, tmp, "--dataset", str(tmp / "renamed.npz"))

    return args


# (setup(data, tmp) -> CLI arguments, exit code, what the one line on stderr says)
CASES: dict[str, tuple[Callable[[Path, Path], list[str]], int, str]] = {
    # tracebacks before
    "--fps 0": (
        lambda d, t: ["show", "synthetic", "--format", "gif", "--fps", "0", "--frames", "3", "--out", str(t)],
        2,
        "error: Invalid value for '--fps': 0 is not in the range 1<=x<=100",
    ),
    "--fps -5": (lambda d, t: ["show", "synthetic", "--format", "gif", "--fps", "-5", "--out", str(t)], 2, "Invalid value for '--fps'"),
    "table --results DIR": (results_dir, 2, "dir: is a directory, not a results file (results.jsonl)"),
    "OUT/results.jsonl is a directory": (results_file_is_dir, 2, "results.jsonl: is a directory, not a results file"),
    # silent wrong results before
    "eval of NaN weights": (
        eval_of(edited_checkpoint(nan_weight)),
        2,
        "edited.pt: tensor 'encoders_q.joint.encoder.gru.weight_ih_l0' holds 1 non-finite value(s)",
    ),
    "temperature=inf": (lambda d, t: run_on(d, t, "--set", "method.temperature=inf"), 2, "error: --set method.temperature=inf: expected a finite number > 0"),
    "temperature=-1": (lambda d, t: run_on(d, t, "--set", "method.temperature=-1"), 2, "--set method.temperature=-1.0: expected a finite number > 0"),
    "momentum=2": (lambda d, t: run_on(d, t, "--set", "method.momentum=2"), 2, "--set method.momentum=2.0: expected a number in [0, 1]"),
    "pretrain.epochs=0": (lambda d, t: run_on(d, t, "--set", "pretrain.epochs=0"), 2, "--set pretrain.epochs=0: expected a whole number >= 1"),
    # errors found mid-training before
    "pretrain.lr=-1": (lambda d, t: run_on(d, t, "--set", "pretrain.lr=-1"), 2, "--set pretrain.lr=-1.0: expected a finite number > 0"),
    "pretrain.batch_size=0": (lambda d, t: run_on(d, t, "--set", "pretrain.batch_size=0"), 2, "--set pretrain.batch_size=0: expected a whole number >= 1"),
    "pretrain.batch_size=-1": (lambda d, t: run_on(d, t, "--set", "pretrain.batch_size=-1"), 2, "--set pretrain.batch_size=-1: expected"),
    "data.frames=0": (lambda d, t: run_on(d, t, "--set", "data.frames=0"), 2, "--set data.frames=0: expected a whole number >= 1"),
    "data.frames=-5": (lambda d, t: run_on(d, t, "--set", "data.frames=-5"), 2, "--set data.frames=-5: expected a whole number >= 1"),
    "method.queue_size=0": (lambda d, t: run_on(d, t, "--set", "method.queue_size=0"), 2, "--set method.queue_size=0: expected a whole number >= 1"),
    # incompatibilities found after other work before
    "aimclr's flip without a mirror": (
        lambda d, t: run_on(d, t, "--dataset", str(write_npz(t / "chain.npz", 7)), "--methods", "random,moco,aimclr"),
        2,
        "error: aimclr: the spatial flip needs a left-right joint mirror, which layout 'chain7' does not define",
    ),
    "a pretraining batch larger than the data": (
        lambda d, t: run_on(d, t, "--set", "pretrain.batch_size=1000"),
        2,
        "--set pretrain.batch_size=1000: more than the 24 training samples of",
    ),
    "a stream the method does not train": (
        lambda d, t: run_on(d, t, "--set", "eval.stream=motion"),
        2,
        "--set eval.stream=motion: moco trains only the joint stream(s)",
    ),
    "one head per stream without the concatenated streams": (
        lambda d, t: run_on(d, t, "--protocols", "linear", "--set", "eval.linear_head=per_stream_mean"),
        2,
        "--set eval.linear_head=per_stream_mean: needs eval.stream=concat (one head per stream of the concatenated features), not eval.stream=joint",
    ),
    "one head per stream on a single-stream method": (
        lambda d, t: run_on(d, t, "--protocols", "linear", "--set", "eval.stream=concat", "--set", "eval.linear_head=per_stream_mean"),
        2,
        "--set eval.linear_head=per_stream_mean: moco trains one stream; one head per stream needs a method that trains several",
    ),
    "one head per stream on a single-stream checkpoint": (
        eval_of(lambda d, t: checkpoint(d), "d25.npz", "--protocols", "linear", "--set", "eval.stream=concat", "--set", "eval.linear_head=per_stream_mean"),
        2,
        "eval.linear_head=per_stream_mean: needs the concatenated features of several streams",
    ),
    # misleading messages before
    "CSV renamed .npz": (text_file(b"a,b\n1,2\n"), 2, "renamed.npz: is not a numpy file: neither an .npz (zip) archive nor an .npy array"),
    "random bytes renamed .npz": (text_file(bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8))), 2, "renamed.npz: is not a numpy file"),
    "eval of a corrupt file": (eval_of(corrupt, "d25.npz", "--method", "moco"), 2, "corrupt.pt: is corrupt or truncated"),
    "pretrain.epochs=-1": (lambda d, t: run_on(d, t, "--set", "pretrain.epochs=-1"), 2, "--set pretrain.epochs=-1: expected a whole number >= 1"),
    "prepare --workers -2": (
        lambda d, t: ["prepare", "ntu60", "--raw", str(t), "--out", str(t / "p"), "--workers", "-2"],
        2,
        "Invalid value for '--workers': -2 is not in the range x>=1",
    ),
    "plot --methods nosuch": (
        lambda d, t: ["plot", "--out", str(d / "results"), "--methods", "nosuch"],
        2,
        "--methods: no stored results of 'nosuch'; the results hold: random",
    ),
    "25-joint checkpoint on 20-joint data": (
        eval_of(lambda d, t: checkpoint(d), "d20.npz"),
        2,
        (
            "does not fit moco on this data: the checkpoint takes 75 input values per frame (channels x joints x persons), "
            "this data 60 (3 x 20 x 1): e.g. 25 joints with the other sizes as here"
        ),
    ),
    # silently ignored input before
    "--set data.dataset=nosuch": (
        lambda d, t: run_on(d, t, "--set", "data.dataset=nosuch"),
        2,
        "--set data.dataset: does not apply to `halp-bench run`; use --dataset",
    ),
    "eval --set pretrain.epochs=5": (
        eval_of(lambda d, t: checkpoint(d), "d25.npz", "--set", "pretrain.epochs=5"),
        2,
        "--set pretrain.epochs: does not apply to `halp-bench eval`; eval does not pretrain",
    ),
    "show --set pretrain.epochs=3": (
        lambda d, t: ["show", "synthetic", "--set", "pretrain.epochs=3", "--out", str(t)],
        2,
        "--set pretrain.epochs: does not apply to `halp-bench show`",
    ),
    "a suite's bad value before its first entry": (
        lambda d, t: ["run", "--suite", "synthetic-all", "--set", "method.momentum=3", "--out", str(t / "o"), "--threads", "1"],
        2,
        "error: --set method.momentum=3.0: expected a number in [0, 1]",
    ),
    "--seeds ''": (lambda d, t: run_on(d, t, "--seeds", ""), 2, "Invalid value for '--seeds': '': expected comma-separated integers"),
    "--protocols ''": (lambda d, t: run_on(d, t, "--protocols", ""), 2, "Invalid value for '--protocols': '': expected at least one"),
    "--methods ''": (lambda d, t: run_on(d, t, "--methods", ""), 2, "Invalid value for '--methods': '': expected at least one"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_is_one_line_and_the_right_exit_code(case, data, tmp_path, monkeypatch, capsys, one_thread):
    setup, expected_code, expected = CASES[case]
    code, out, err = cli(setup(data, tmp_path), monkeypatch, capsys)
    assert code == expected_code, err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    if case == "eval of a corrupt file":
        assert "--force" not in err  # --force would fail the same way
    assert not list(tmp_path.glob("o/runs/*/checkpoint.pt"))  # nothing trained


def good_row(data: Path) -> dict:
    return json.loads((data / "results" / "results.jsonl").read_text().splitlines()[0])


# (the line appended to a results file of two good rows, what the one warning says of it)
BAD_LINES: dict[str, tuple[Callable[[Path], str], str]] = {
    "not a row": (lambda d: '{"a": 1}', "line 3: not a valid result row: missing 'method'"),
    "seed 'one'": (lambda d: json.dumps({**good_row(d), "seed": "one"}), "line 3: not a valid result row: 'seed' is 'one'"),
    "top1 'high'": (
        lambda d: json.dumps({**good_row(d), "metrics": {"top1": "high"}}),
        "line 3: not a valid result row: metric 'top1' is 'high', not a number",
    ),
    "top1 NaN": (lambda d: json.dumps({**good_row(d), "seed": 7, "metrics": {"top1": float("nan")}}), "line 3: not a valid result row: metric 'top1' is nan"),
    "top1 250": (
        lambda d: json.dumps({**good_row(d), "seed": 8, "metrics": {"top1": 250.0}}),
        "line 3: not a valid result row: metric 'top1' is 250, outside 0 to 100 %",
    ),
    "torn line": (lambda d: json.dumps(good_row(d))[:40], "line 3: not a complete JSON row (torn write?); skipped"),
}


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("command", ["table", "run"])
@pytest.mark.parametrize("case", list(BAD_LINES))
def test_a_bad_results_line_is_reported_once_and_every_good_row_still_shown(case, command, data, tmp_path, monkeypatch, capsys):
    line, expected = BAD_LINES[case]
    code, clean, _ = cli(["table", "--out", str(data / "results"), "--tables", "knn", "--format", "md"], monkeypatch, capsys)
    assert code == 0 and len(table_lines(clean)) == 3  # header, rule, the random row
    out = tmp_path / "o"
    shutil.copytree(data / "results", out)
    with open(out / "results.jsonl", "a") as handle:
        handle.write(line(data) + "\n")
    args = {
        "table": ["table", "--out", str(out), "--tables", "knn", "--format", "md"],
        "run": [
            "run",
            "--dataset",
            str(data / "d25.npz"),
            "--methods",
            "random",
            "--protocols",
            "knn",
            "--preset",
            "cpu",
            "--seeds",
            "0,1",
            *(a for item in tiny_overrides("random") if not item.startswith("device=") for a in ("--set", item)),
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ],
    }[command]
    code, shown, err = cli(args, monkeypatch, capsys)
    assert code == 0, err
    assert "Traceback" not in err and "UserWarning" not in err
    (warning,) = err.strip().splitlines()  # once, though `run` reads the file twice
    assert warning.startswith(f"warning: {out / 'results.jsonl'} {expected}") and warning.endswith("; skipped"), warning
    assert table_lines(clean) == table_lines(shown)[-3:]  # the same table: both seeds, nothing averaged in


def test_threads_above_the_cores_warn(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("halp_bench.common.cpu_share.machine_cores", lambda: 2)
    args = [
        "run",
        "--dataset",
        str(data / "d25.npz"),
        "--methods",
        "random",
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--threads",
        "3",
        *(a for item in tiny_overrides("random") if not item.startswith("device=") for a in ("--set", item)),
    ]
    code, _, err = cli(args, monkeypatch, capsys)
    assert code == 0, err
    (line,) = err.strip().splitlines()
    assert line.startswith("warning: --threads 3 is more than the 2 cores this process may use") and "measured" in line


BROKEN_PLUGIN = "raise ImportError('needs a library that is not installed')\n"


@pytest.mark.parametrize("command", [["list", "--no-settings"], ["table", "--out", "RESULTS"], ["data", "DATASET", "--no-progress"]])
def test_a_broken_plugin_is_reported_once_and_left_out(command, data, tmp_path):
    (tmp_path / "broken_plugin.py").write_text(BROKEN_PLUGIN)
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[halp_bench.methods]\nbroken = broken_plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "300", "OMP_NUM_THREADS": "1"}
    shutil.copytree(data / "results", tmp_path / "r")
    args = [str(tmp_path / "r") if a == "RESULTS" else str(data / "d25.npz") if a == "DATASET" else a for a in command]
    result = subprocess.run([sys.executable, "-m", "halp_bench.cli", *args], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warning = (
        "warning: plugin 'broken' (broken_plugin) failed to import and is left out (ImportError: needs a library that is not "
        "installed); fix or uninstall its package"
    )
    # `table` reads the stored rows only and imports no plugin at all, so it has nothing to report
    assert result.stderr.strip().splitlines() == ([] if command[0] == "table" else [warning])
