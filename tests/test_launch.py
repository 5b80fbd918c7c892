"""`run --launcher local` (submitit's local executor), the launcher's options and `halp-bench status`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import tiny_overrides
from halp_bench.cli import cli
from halp_bench.errors import ConfigError
from halp_bench.orchestration.grid import RunSpec
from halp_bench.orchestration.launch.options import resolve_options, time_minutes
from halp_bench.orchestration.launch.plan import unit_id, unit_of, write_job_record
from halp_bench.orchestration.launch.status import Scheduler, grid_status, unit_needs_work
from halp_bench.results.cell_files import store_cell_row
from halp_bench.results.claims import try_claim
from halp_bench.results.store import load_results

SMALL = ["data.synthetic_samples=60"]


def grid_args(out, *more: str) -> list[str]:
    """2 methods x 1 seed x kNN on 60 synthetic samples, tiny settings, deterministic."""
    sets = [a for o in [*tiny_overrides("moco", "random"), *SMALL] for a in ("--set", o)]
    return [
        "run",
        "--methods",
        "moco,random",
        "--seeds",
        "0",
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
        "--deterministic",
        *sets,
        *more,
    ]


def _cells(out) -> dict:
    return {(r["method"], r["seed"], r["protocol"]): r["metrics"] for r in load_results(out / "results.jsonl")}


def test_local_launcher_gives_the_in_process_rows(tmp_path):
    runner = CliRunner()
    launched = runner.invoke(cli, grid_args(tmp_path / "jobs", "--launcher", "local", "--max-jobs", "2"), catch_exceptions=False)
    assert launched.exit_code == 0, launched.output
    assert "submitted 2 job(s)" in launched.output
    in_process = runner.invoke(cli, grid_args(tmp_path / "here"), catch_exceptions=False)
    assert in_process.exit_code == 0, in_process.output
    assert _cells(tmp_path / "jobs") == _cells(tmp_path / "here")
    assert len(load_results(tmp_path / "jobs" / "results.jsonl")) == 2
    again = runner.invoke(cli, grid_args(tmp_path / "jobs", "--launcher", "local"), catch_exceptions=False)
    assert "2 of 2 jobs not submitted" in again.output  # done cells are not submitted again
    status = runner.invoke(cli, ["status", "--out", str(tmp_path / "jobs"), "--json"], catch_exceptions=False)
    assert json.loads(status.output)["totals"]["done"] == 2


def test_options_come_from_the_command_line_then_env_then_config_file(tmp_path, monkeypatch):
    config = tmp_path / "launcher.toml"
    config.write_text('[slurm]\npartition = "gpu"\naccount = "lab"\ntime = "2:00:00"\nsbatch = ["mail-type=END"]\n')
    monkeypatch.setenv("HALP_BENCH_CONFIG", str(config))
    monkeypatch.setenv("HALP_BENCH_SLURM_ACCOUNT", "other")
    options = resolve_options({"partition": "debug", "account": None})
    assert (options.partition, options.account, options.timeout_min(), options.cpus) == ("debug", "other", 120, 4)
    assert options.extra_sbatch() == {"mail_type": "END"}
    config.write_text("[slurm]\npartitoin = 'gpu'\n")
    with pytest.raises(ConfigError, match="unknown .slurm. setting.*partitoin"):
        resolve_options({})
    assert [time_minutes(t) for t in ("90", "1:30", "1:00:01", "1-0", "2-1:30")] == [90, 2, 61, 1440, 2970]
    with pytest.raises(ConfigError, match="time 'soon'"):
        time_minutes("soon")


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)


def test_status_shows_done_running_queued_and_failed_cells(tmp_path, monkeypatch):
    spec = RunSpec(methods=["moco", "random"], dataset="synthetic", protocols=["knn", "linear"], preset="cpu", out=tmp_path, seeds=[0, 1])
    units = {(m, s): unit_of(spec, m, s) for s in (0, 1) for m in ("moco", "random")}
    # moco seed 0: both cells done (rows from its run directory, which its claim names)
    done = try_claim(tmp_path, "moco_run0", units["moco", 0], epochs=2)
    for protocol in ("knn", "linear"):
        store_cell_row(
            tmp_path,
            ("moco", "synthetic", "xsub", protocol, "cpu", 0, None, "c"),
            {
                "method": "moco",
                "seed": 0,
                "protocol": protocol,
                "dataset": "synthetic",
                "preset": "cpu",
                "run_dir": str(tmp_path / "runs" / "moco_run0"),
                "metrics": {"top1": 50.0},
                "finished": "x",
            },
        )
    done.release()
    # random seed 0: running here (a live claim, 1 of 3 epochs logged)
    running = try_claim(tmp_path, "random_run0", units["random", 0], epochs=3)
    (tmp_path / "runs" / "random_run0").mkdir(parents=True)
    (tmp_path / "runs" / "random_run0" / "log.csv").write_text("epoch,loss\n1,0.5\n")
    # moco seed 1: queued (squeue lists its job as pending)
    write_job_record(tmp_path, units["moco", 1], {"launcher": "slurm", "job_id": "42_1", "log": "q.out"})
    monkeypatch.setattr(Scheduler, "slurm_jobs", lambda self: {"42_1": ("PENDING", "1:00:00", "")})
    # random seed 1: its knn cell failed with an error noted in the claim; its job died
    failing = try_claim(tmp_path, "random_run1", units["random", 1], epochs=2)
    failing.note_failure("knn", "RuntimeError: out of memory\ntraceback...")
    failing.release()
    write_job_record(tmp_path, units["random", 1], {"launcher": "local", "job_id": str(_dead_pid()), "log": "f.out", "err": "f.err"})
    cells = {(c.method, c.seed, c.protocol): c for c in grid_status(tmp_path, Scheduler())}
    assert {k: c.state for k, c in cells.items()} == {
        ("moco", 0, "knn"): "done",
        ("moco", 0, "linear"): "done",
        ("random", 0, "knn"): "running",
        ("random", 0, "linear"): "running",
        ("moco", 1, "knn"): "queued",
        ("moco", 1, "linear"): "queued",
        ("random", 1, "knn"): "failed",
        ("random", 1, "linear"): "failed",
    }
    assert cells["random", 0, "knn"].epoch == "1/3" and cells["random", 0, "knn"].node
    assert cells["random", 1, "knn"].error == "RuntimeError: out of memory"
    assert cells["random", 1, "linear"].error == "its job ended without a result" and cells["random", 1, "linear"].log == "f.err"
    scheduler = Scheduler()
    assert [unit_needs_work(tmp_path, units[k], scheduler) for k in (("moco", 0), ("random", 0), ("moco", 1), ("random", 1))] == [False, False, False, True]
    result = CliRunner().invoke(cli, ["status", "--out", str(tmp_path)], catch_exceptions=False, terminal_width=200)
    assert "8 cells: 2 done, 2 running, 2 queued, 2 failed, 0 skipped" in result.output
    assert "RuntimeError: out of memory" in result.output
    as_json = json.loads(CliRunner().invoke(cli, ["status", "--out", str(tmp_path), "--json"]).output)
    assert as_json["totals"] == {"done": 2, "running": 2, "queued": 2, "failed": 2, "skipped": 0} and as_json["total"] == 8
    running.release()
    assert unit_id(units["moco", 0]) != unit_id(units["moco", 1])
