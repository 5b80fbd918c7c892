"""Nothing lost: a run killed anywhere (mid-epoch, mid-checkpoint-write) and rerun ends bit-for-bit
where an uninterrupted run ends; the same seed gives the same rows; a NaN stops one cell cleanly."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config, tiny_overrides
from halp_bench.engine.checkpoint import load_checkpoint
from halp_bench.engine.device import seed_everything
from halp_bench.engine.pretrain import pretrain
from halp_bench.methods.base import create_method
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import DATASETS, METHODS, load_plugins
from halp_bench.results.store import load_results

load_plugins()
TRAINABLE = [name for name in METHODS.names() if METHODS.get(name).pretrains]

EPOCHS, TRAIN, BATCH = 3, 48, 4
ITERS = TRAIN // BATCH  # iterations per epoch
# HaLP on CMD: three streams, three queue banks, prototypes and their generators, all resumed.
METHOD = "halp_cmd"
SETTINGS = [*tiny_overrides(METHOD), f"pretrain.batch_size={BATCH}", f"pretrain.epochs={EPOCHS}", "checkpoint_every_iters=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "300"}

# The killed runs go through this launcher: the same CLI, made slow or made to hang at a chosen
# point so that the test can SIGKILL it there. It changes no number.
LAUNCHER = """
import os, sys, time
import torch
import halp_bench.methods.moco as moco

step_delay = float(os.environ.get("HB_STEP_DELAY", "0"))
pause_at = os.environ.get("HB_PAUSE_SAVE_AT")  # "epoch,iteration": hang inside that checkpoint write
original_step, original_save = moco.MoCo.training_step, torch.save

def slow_step(self, batch):
    time.sleep(step_delay)
    return original_step(self, batch)

def pausing_save(obj, f, *args, **kwargs):
    original_save(obj, f, *args, **kwargs)
    if pause_at and isinstance(obj, dict) and f"{obj.get('epoch')},{obj.get('iteration')}" == pause_at:
        f.flush()
        time.sleep(600)  # SIGKILLed here: the temporary file is written, not yet renamed

moco.MoCo.training_step = slow_step
torch.save = pausing_save
sys.argv = ["halp-bench", *sys.argv[1:]]
from halp_bench.cli import main
main()
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A generic .npz dataset (a subprocess cannot see datasets registered in this process)."""
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(0)
    n = TRAIN + 16
    x = rng.normal(size=(n, 3, 12, 25, 1)).astype(np.float32)
    split = np.arange(n) < TRAIN
    np.savez(root / "tiny.npz", x=x, y=np.arange(n) % 3, split_all=split)
    (root / "launcher.py").write_text(LAUNCHER)
    return root


def command(workdir: Path, out: str) -> list[str]:
    sets = [arg for item in SETTINGS for arg in ("--set", item)]
    return [
        "run",
        "--dataset",
        str(workdir / "tiny.npz"),
        "--methods",
        METHOD,
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        *sets,
        "--out",
        str(workdir / out),
        "--no-progress",
    ]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "halp_bench.cli", *args], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def run_dir(workdir: Path, out: str) -> Path:
    (found,) = (workdir / out / "runs").glob(f"{METHOD}_*")
    return found


def step_of(checkpoint: Path) -> int:
    """The checkpoint's position as a global iteration (0 while there is none)."""
    if not checkpoint.is_file():
        return 0
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return state["epoch"] * ITERS + state["iteration"]


def progress(out: Path) -> Callable[[], int]:
    """The newest checkpoint's step under `out`, re-read only when the file changes (polling must
    not steal the CPU from the run it watches)."""
    seen: dict[str, object] = {"stamp": None, "step": 0}

    def step() -> int:
        for path in out.glob("runs/*/checkpoint.pt"):
            try:
                stamp = path.stat().st_mtime_ns, path.stat().st_ino
            except FileNotFoundError:
                continue
            if stamp != seen["stamp"]:
                seen.update(stamp=stamp, step=step_of(path))
        return int(seen["step"])

    return step


def kill_when(workdir: Path, args: list[str], env: dict[str, str], ready: Callable[[], bool]) -> None:
    """Start the launcher, SIGKILL it as soon as `ready()` holds (polled every few ms)."""
    log = workdir / "killed-run.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, str(workdir / "launcher.py"), *args], env={**ENV, **env}, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    try:
        while not ready():
            assert proc.poll() is None, f"the run ended before the kill point: {log.read_text()}"
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def final_state(workdir: Path, out: str) -> tuple[dict, dict[str, torch.Tensor], list[list[str]]]:
    (row,) = load_results(workdir / out / "results.jsonl")
    state = load_checkpoint(run_dir(workdir, out) / "checkpoint.pt")
    log = [line.split(",") for line in (run_dir(workdir, out) / "log.csv").read_text().splitlines()]
    return row, state, [[cell for i, cell in enumerate(line) if i != 1] for line in log]  # without seconds


def assert_identical(got: tuple, want: tuple) -> None:
    (row, state, log), (ref_row, ref_state, ref_log) = got, want
    assert row["metrics"] == ref_row["metrics"]
    assert row["pretrain"]["final_loss"] == ref_row["pretrain"]["final_loss"]
    assert log == ref_log and len(log) == EPOCHS + 1
    assert (state["epoch"], state["iteration"]) == (EPOCHS, 0)
    for part in ("model", "optimizer"):
        flat, ref = _tensors(state[part]), _tensors(ref_state[part])
        assert flat.keys() == ref.keys()
        assert all(torch.equal(flat[k], ref[k]) for k in ref), [k for k in ref if not torch.equal(flat[k], ref[k])]
    for name in ("augment", "shuffle"):
        assert torch.equal(state["rng"][name], ref_state["rng"][name])
    assert torch.equal(state["rng"]["global"]["torch"], ref_state["rng"]["global"]["torch"])


def _tensors(tree: object, prefix: str = "") -> dict[str, torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _tensors(value, f"{prefix}.{key}").items()}
    if isinstance(tree, (list, tuple)):
        return {k: v for i, value in enumerate(tree) for k, v in _tensors(value, f"{prefix}.{i}").items()}
    return {}


@pytest.fixture(scope="module")
def reference(workdir) -> tuple:
    run_cli(command(workdir, "reference"))
    return final_state(workdir, "reference")


def test_sigkill_mid_epoch_then_rerun_gives_identical_results(workdir, reference):
    args = command(workdir, "killed")
    kill_points = []
    step = progress(workdir / "killed")
    for target in (5, ITERS + 5, 2 * ITERS + 7):  # one kill in each epoch
        kill_when(workdir, args, {"HB_STEP_DELAY": "0.03"}, lambda: step() >= target)  # noqa: B023
        kill_points.append(step_of(run_dir(workdir, "killed") / "checkpoint.pt"))
    assert all(0 < p % ITERS for p in kill_points), f"a kill was not in the middle of an epoch: {kill_points}"
    assert kill_points == sorted(kill_points) and len(set(kill_points)) == 3  # each rerun resumed and went on
    last = kill_points[-1]
    rerun = run_cli(args)
    assert f"resuming {METHOD} from epoch {last // ITERS} of {EPOCHS}, iteration {last % ITERS} of {ITERS}" in rerun.stdout
    assert_identical(final_state(workdir, "killed"), reference)


def test_sigkill_mid_checkpoint_write_then_rerun_gives_identical_results(workdir, reference):
    args = command(workdir, "torn")
    step = progress(workdir / "torn")
    for pause_at in ("0,7", "2,0"):  # a mid-epoch checkpoint, then the one after epoch 2
        epoch, iteration = map(int, pause_at.split(","))
        previous = epoch * ITERS + iteration - 1
        kill_when(
            workdir,
            args,
            {"HB_PAUSE_SAVE_AT": pause_at},
            lambda previous=previous: step() == previous and bool(list((workdir / "torn").glob("runs/*/.checkpoint.pt.*.tmp"))),
        )
        directory = run_dir(workdir, "torn")
        assert list(directory.glob(".checkpoint.pt.*.tmp")), "the kill did not land inside the write"
        assert step_of(directory / "checkpoint.pt") == previous  # the previous checkpoint, intact
    rerun = run_cli(args)
    assert f"resuming {METHOD} from epoch 1 of {EPOCHS}, iteration {ITERS - 1} of {ITERS}" in rerun.stdout
    assert not list(run_dir(workdir, "torn").glob(".checkpoint.pt.*.tmp"))  # leftovers cleaned up
    assert_identical(final_state(workdir, "torn"), reference)


# --- in-process: many interruption points, determinism, NaN -----------------------------------


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if "tiny-random" not in DATASETS:
        DATASETS.add("tiny-random", lambda cfg: random_skeletons(n=24, t=12), "test data")


class Interrupt(BaseException):
    """Stands in for a kill: nothing after it runs, nothing catches it."""


@pytest.mark.parametrize("method_name", TRAINABLE)
def test_interrupted_anywhere_and_resumed_in_process_is_bit_identical(tmp_path, monkeypatch, one_thread, method_name):
    """Every registered method (plugins included): its whole state resumes bit-for-bit."""
    data = random_skeletons(n=32, t=12)
    train, _ = data.split("all")
    cfg = tiny_config(method_name, "pretrain.batch_size=4", "pretrain.epochs=2", "checkpoint_every_iters=3")
    method_class = METHODS.get(method_name)

    def train_in(directory: Path):
        seed_everything(0)
        method = create_method(method_name, cfg, NTU_SPEC)
        return method, pretrain(method_name, method, train, cfg, torch.device("cpu"), directory, show_progress=False, say=lambda _: None)

    reference, ref_result = train_in(tmp_path / "reference")
    original = method_class.training_step
    # 5 iterations an epoch, a checkpoint every 3 (and at epoch ends): steps each attempt gets
    # before it is stopped; each restarts from the last checkpoint and redoes the lost steps.
    for allowed in (4, 4, 2, 3):
        steps = []

        def stopping_step(self, batch, steps=steps, allowed=allowed):
            if len(steps) == allowed:
                raise Interrupt
            steps.append(batch.iteration)
            return original(self, batch)

        monkeypatch.setattr(method_class, "training_step", stopping_step)
        with pytest.raises(Interrupt):
            train_in(tmp_path / "resumed")
    monkeypatch.setattr(method_class, "training_step", original)
    resumed, result = train_in(tmp_path / "resumed")
    assert result.resumed_from == 1 and len(result.epoch_times) == 2
    assert result.losses == ref_result.losses
    want = reference.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in resumed.state_dict().items() if isinstance(v, torch.Tensor))
    assert result.peak_mb > 0 and all(t > 0 for t in result.epoch_times)


def _spec(tmp_path: Path, **kw) -> RunSpec:
    base = dict(methods=["halp"], dataset="tiny-random", protocols=["knn", "linear"], preset="cpu", out=tmp_path, show_progress=False, deterministic=True)
    base.update(kw)
    return RunSpec(overrides=tiny_overrides(*base["methods"]), **base)


def test_the_same_seed_twice_gives_identical_rows(tmp_path, one_thread):
    rows = []
    for out in ("first", "second"):
        assert [o.status for o in run_grid(_spec(tmp_path / out), say=lambda _: None)] == ["ran", "ran"]
        rows.append(load_results(tmp_path / out / "results.jsonl"))
        assert not torch.are_deterministic_algorithms_enabled()  # the run's mode did not leak out
    numbers = [[(r["protocol"], r["metrics"], r["pretrain"]["final_loss"], r["config_id"], r["deterministic"]) for r in run] for run in rows]
    assert numbers[0] == numbers[1]
    other_seed = run_grid(_spec(tmp_path / "third", seeds=[1], protocols=["knn"]), say=lambda _: None)
    assert load_results(tmp_path / "third" / "results.jsonl")[0]["pretrain"]["final_loss"] != rows[0][0]["pretrain"]["final_loss"]
    assert [o.status for o in other_seed] == ["ran"]


@pytest.mark.parametrize(
    "inject, expected",
    [
        # the loss of epoch 2, iteration 1 becomes NaN
        (
            lambda self, b, losses: b.epoch == 1 and b.iteration == 1 and losses.update(loss=losses["loss"] * math.nan),
            "moco: loss 'loss' is nan at epoch 2, iteration 1; the last good checkpoint (at the end of epoch 1) is kept at",
        ),
        # weights become Inf in the last step of epoch 2 (with a finite loss): never checkpointed
        (
            lambda self, b, losses: b.epoch == 1 and b.iteration == 1 and self.encoders_k["joint"].head[0].weight.fill_(math.inf),
            "moco: non-finite values in encoders_k.joint.head.0.weight at the end of epoch 2; the last good checkpoint (at the end of epoch 1) is kept at",
        ),
    ],
    ids=["nan-loss", "inf-weights"],
)
def test_a_non_finite_value_stops_the_cell_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, one_thread, inject, expected):
    import halp_bench.methods.moco as moco

    original = moco.MoCo.training_step

    def step(self, batch):
        losses = original(self, batch)
        with torch.no_grad():
            inject(self, batch, losses)
        return losses

    monkeypatch.setattr(moco.MoCo, "training_step", step)
    spec = _spec(tmp_path, methods=["moco", "random"], protocols=["knn"], deterministic=False)
    outcomes = run_grid(spec, say=lambda _: None)  # 24 samples, 16 train, batch 8: iterations 0 and 1
    failed, ran = outcomes
    assert (failed.method, failed.status, failed.user_error) == ("moco", "failed", True)
    assert failed.detail.startswith(expected), failed.detail
    assert (ran.method, ran.status) == ("random", "ran")  # the other cells go on
    (directory,) = (tmp_path / "runs").glob("moco_*")
    state = load_checkpoint(directory / "checkpoint.pt")
    assert (state["epoch"], state["iteration"]) == (1, 0)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if isinstance(v, torch.Tensor) and v.is_floating_point())
    monkeypatch.setattr(moco.MoCo, "training_step", original)
    messages = []
    assert [o.status for o in run_grid(spec, say=messages.append)] == ["ran", "skipped"]  # fixed: resumes
    assert any("resuming moco from epoch 1 of 2" in m for m in messages)
