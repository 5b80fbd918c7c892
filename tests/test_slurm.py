"""`run --launcher slurm` on a real one-node Slurm cluster started on this machine by
scripts/slurm_cluster.sh (needs root and Debian's slurm-wlm and munge; .ci/run installs them).
Every grid here is tiny: a few seconds of training per job."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tiny_overrides
from halp_bench.cli import cli
from halp_bench.results.claims import slurm_job_gone
from halp_bench.results.store import load_results

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm_cluster.sh"
SLURM_DIR = Path(os.environ.get("HALP_SLURM_DIR", "/tmp/halp-bench-slurm"))
MISSING = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if shutil.which(tool) is None]


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node cluster for this module's tests, stopped afterwards."""
    if MISSING or os.geteuid() != 0:
        pytest.skip(f"no Slurm to start: {'missing ' + ', '.join(MISSING) if MISSING else 'not root'} (as root: apt-get install slurm-wlm munge; .ci/run does)")
    started = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, f"scripts/slurm_cluster.sh start failed: {started.stderr}"
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(SLURM_DIR / "slurm.conf")
    yield
    subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


def grid(out: Path, methods: str, seeds: str, protocols: str, *more: str, samples: int = 60, sets: tuple[str, ...] = ()) -> list[str]:
    """A deterministic one-thread grid on `samples` synthetic sequences at the tiny settings."""
    items = [*tiny_overrides(*methods.split(",")), f"data.synthetic_samples={samples}", *sets]
    return [
        "run",
        "--methods",
        methods,
        "--seeds",
        seeds,
        "--protocols",
        protocols,
        "--preset",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
        "--deterministic",
        *(a for item in items for a in ("--set", item)),
        *more,
    ]


SLURM = ("--launcher", "slurm", "--cpus-per-task", "1", "--time", "10", "--wait")


def _cli(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _cells(out: Path) -> list[tuple]:
    return sorted((r["method"], r["seed"], r["protocol"], r["metrics"]["top1"]) for r in load_results(out / "results.jsonl"))


def _squeue() -> dict[str, tuple[str, str]]:
    text = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r"], capture_output=True, text=True).stdout
    return {line.split("|")[0]: tuple(line.split("|")[1:]) for line in text.splitlines() if line.count("|") == 2}


def _job_logs(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((out / "jobs" / "logs").rglob("*_log.out")))


def test_grid_on_slurm_gives_the_in_process_rows(slurm_cluster, tmp_path):
    output = _cli(grid(tmp_path / "slurm", "moco,random", "0,1", "knn,linear", *SLURM))
    assert "submitted 4 job(s)" in output
    _cli(grid(tmp_path / "here", "moco,random", "0,1", "knn,linear"))
    assert len(_cells(tmp_path / "slurm")) == 8
    assert _cells(tmp_path / "slurm") == _cells(tmp_path / "here")


def test_the_same_grid_submitted_twice_at_once_stores_one_row_per_cell(slurm_cluster, tmp_path):
    command = [sys.executable, "-m", "halp_bench.cli", *grid(tmp_path, "moco,random", "0", "knn"), *SLURM]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    rows = load_results(tmp_path / "results.jsonl")
    assert sorted((r["method"], r["protocol"]) for r in rows) == [("moco", "knn"), ("random", "knn")]
    for log in (tmp_path / "runs").glob("*/log.csv"):
        assert len(log.read_text().splitlines()) == 1 + 2  # one writer: two epochs, once


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_scancel_then_the_same_command_resumes_and_finishes(slurm_cluster, tmp_path):
    args = grid(
        tmp_path, "moco", "0", "knn", "--launcher", "slurm", "--cpus-per-task", "1", "--time", "10", samples=400, sets=("pretrain.epochs=60",)
    )  # long enough (about 30 s on a quiet machine) to be cancelled mid-way
    _cli(args)  # submitted, not waited for
    (job,) = _squeue()
    _wait_for(lambda: any((tmp_path / "runs").glob("moco_*/checkpoint.pt")), 180, "a first checkpoint")
    (cell,) = json.loads(_cli(["status", "--out", str(tmp_path), "--json"]))["cells"]
    assert (cell["state"], cell["job"], cell["node"]) == ("running", job, socket.gethostname()) and cell["time_left"]
    assert not slurm_job_gone(job)
    subprocess.run(["scancel", job], check=True)
    _wait_for(lambda: job not in _squeue(), 60, "the cancelled job to leave the queue")
    assert slurm_job_gone(job)  # a claim it left on another node would be taken over at once
    assert load_results(tmp_path / "results.jsonl") == []
    _cli([*args, "--wait"])
    (row,) = load_results(tmp_path / "results.jsonl")
    assert row["pretrain"]["resumed_from"] >= 1 and row["pretrain"]["epochs"] == 60
    assert "resuming moco from epoch" in _job_logs(tmp_path)


EPOCHS_PAST_THE_LIMIT = 150  # 60 epochs took 16 s here on a quiet machine: finished before any signal


def test_a_job_past_its_time_limit_is_requeued_and_resumes(slurm_cluster, tmp_path):
    """Slurm signals the job before its 1-minute limit (40 s before, to within Slurm's resolution:
    at most 20 s after it starts; its training takes about 40 s on a quiet 2-core machine, so it is
    signalled at least once however fast the machine); submitit checkpoints and requeues it. Slurm
    holds a requeued job for two minutes: the test releases it at once."""
    args = grid(
        tmp_path,
        "moco",
        "0",
        "knn",
        "--launcher",
        "slurm",
        "--partition",
        "short",
        "--cpus-per-task",
        "1",
        "--time",
        "1",
        "--signal-delay",
        "40",
        "--max-requeues",
        "40",
        "--wait",
        samples=400,
        sets=(f"pretrain.epochs={EPOCHS_PAST_THE_LIMIT}", "checkpoint_every_iters=3"),
    )
    run = subprocess.Popen([sys.executable, "-m", "halp_bench.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 420
    while run.poll() is None:
        assert time.time() < deadline, "the requeued job did not finish"
        for job, (state, reason) in _squeue().items():
            if state == "PENDING" and reason == "BeginTime":
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        time.sleep(1)
    output = run.communicate()[0]
    assert run.returncode == 0, output
    logs = _job_logs(tmp_path)
    assert "Requeued job" in logs and "resuming moco from epoch" in logs
    (row,) = load_results(tmp_path / "results.jsonl")
    log = next((tmp_path / "runs").glob("moco_*/log.csv")).read_text().splitlines()
    assert row["pretrain"]["epochs"] == EPOCHS_PAST_THE_LIMIT and len(log) == EPOCHS_PAST_THE_LIMIT + 1


def test_a_job_of_two_tasks_pretrains_data_parallel(slurm_cluster, tmp_path):
    """Two tasks of one job are two DDP ranks (gloo on CPU), ranks from Slurm's environment."""
    _cli(grid(tmp_path, "moco", "0", "knn", "--launcher", "slurm", "--tasks-per-job", "2", "--cpus-per-task", "1", "--time", "10", "--wait"))
    (row,) = load_results(tmp_path / "results.jsonl")
    assert row["pretrain"]["processes"] == 2 and row["pretrain"]["batch_per_process"] == 4
