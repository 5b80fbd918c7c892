"""Many processes on one store: one row per cell, one writer per run directory, repeats dropped."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import random_skeletons, tiny_overrides
from halp_bench.cli import cli
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import DATASETS
from halp_bench.results.cell_files import CELLS_DIR
from halp_bench.results.claims import Claim, Holder, read_claim, try_claim
from halp_bench.results.store import load_results

CELLS = {("moco", "knn"), ("moco", "linear"), ("random", "knn"), ("random", "linear")}


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if "tiny-random" not in DATASETS:
        DATASETS.add("tiny-random", lambda cfg: random_skeletons(n=24, t=12), "test data")


def _spec(out) -> RunSpec:
    return RunSpec(
        methods=["moco", "random"],
        dataset="tiny-random",
        protocols=["knn", "linear"],
        preset="cpu",
        out=out,
        overrides=tiny_overrides("moco", "random"),
        show_progress=False,
        deterministic=True,
        threads=1,
    )


def _run_at(out, start: float, results) -> None:
    """A forked process: wait for the common start, run the grid, report (status per cell, error)."""
    try:
        time.sleep(max(start - time.time(), 0))
        outcomes = run_grid(_spec(out), say=lambda _: None)
        results.put([(o.method, o.protocol, o.status, o.detail) for o in outcomes])
    except BaseException as exc:  # reported, so the test names it
        results.put(f"{type(exc).__name__}: {exc}")


def _metrics(out) -> dict:
    return {(r["method"], r["protocol"]): r["metrics"]["top1"] for r in load_results(out / "results.jsonl")}


@pytest.mark.parametrize("repeat", range(6))
def test_two_identical_runs_started_together_store_one_row_per_cell(tmp_path, repeat, one_thread):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.time() + 0.5
    processes = [context.Process(target=_run_at, args=(tmp_path / "out", start, results)) for _ in range(2)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert all(isinstance(r, list) for r in reports), reports  # neither stopped, e.g. with a false "not empty" error
    ran = sorted((m, p) for report in reports for m, p, status, _ in report if status == "ran")
    assert ran == sorted(CELLS)  # every cell ran exactly once, in one process or the other
    rows = load_results(tmp_path / "out" / "results.jsonl")
    assert sorted((r["method"], r["protocol"]) for r in rows) == sorted(CELLS)
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == len(CELLS)  # its log: each cell appended once
    for report in reports:
        assert all(status in ("ran", "skipped") for _, _, status, _ in report), report
    log = (tmp_path / "out" / "runs").glob("moco_*/log.csv")
    lines = next(log).read_text().splitlines()
    assert len(lines) == 1 + 2  # header and the two epochs, written by one process
    lone = tmp_path / "lone"
    run_grid(_spec(lone), say=lambda _: None)  # the same grid alone: the shared run directories were not mixed up
    assert _metrics(tmp_path / "out") == _metrics(lone)


def test_a_live_claim_is_respected_and_a_dead_one_taken_over(tmp_path):
    first = try_claim(tmp_path, "run-a", {"method": "moco", "seed": 0}, ttl=60)
    assert isinstance(first, Claim)
    second = try_claim(tmp_path, "run-a", {"method": "moco", "seed": 0}, ttl=60)
    assert isinstance(second, Holder) and second.token == first.holder.token
    first.release()
    third = try_claim(tmp_path, "run-a", {}, ttl=60)
    assert isinstance(third, Claim) and third.path.name == "000001.json"  # released: the next generation
    third._stop.set()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    holder = json.loads(third.path.read_text())
    holder["pid"] = int(dead)  # as if a process of this host died holding it
    third.path.write_text(json.dumps(holder))
    fourth = try_claim(tmp_path, "run-a", {}, ttl=60)
    assert isinstance(fourth, Claim) and fourth.path.name == "000002.json"
    assert not third.still_held() and fourth.still_held()
    fourth.release()
    assert read_claim(tmp_path / "claims" / "run-a").holder.released


def test_a_claim_without_heartbeat_is_stale_after_the_ttl(tmp_path):
    claim = try_claim(tmp_path, "run-b", {}, ttl=60)
    claim._stop.set()
    claim._beat.join()
    holder = json.loads(claim.path.read_text())
    holder["host"] = "another-node"  # its pid cannot be checked from here
    claim.path.write_text(json.dumps(holder))
    assert isinstance(try_claim(tmp_path, "run-b", {}, ttl=60), Holder)
    old = time.time() - 120
    os.utime(claim.path, (old, old))
    taken = try_claim(tmp_path, "run-b", {}, ttl=60)
    assert isinstance(taken, Claim)
    taken.release()


def test_a_running_claims_heartbeat_keeps_it_fresh(tmp_path):
    claim = try_claim(tmp_path, "run-c", {}, ttl=1.0)
    old = time.time() - 100
    os.utime(claim.path, (old, old))
    time.sleep(0.6)  # a heartbeat every ttl / 5
    assert time.time() - claim.path.stat().st_mtime < 1.0
    claim.release()


def test_repeated_seeds_and_methods_run_once_with_a_note(tmp_path):
    args = [
        "run",
        "--methods",
        "random,random",
        "--seeds",
        "1,1",
        "--dataset",
        "tiny-random",
        "--protocols",
        "knn",
        "--preset",
        "cpu",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--threads",
        "1",
        *(a for o in tiny_overrides("random") for a in ("--set", o)),
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "seed(s) 1 given more than once" in result.output and "method(s) random given more than once" in result.output
    rows = load_results(tmp_path / "results.jsonl")
    assert [(r["method"], r["seed"], r["protocol"]) for r in rows] == [("random", 1, "knn")]
    assert len(list((tmp_path / CELLS_DIR).glob("*.json"))) == 1


def test_rows_of_results_jsonl_and_cell_files_are_read_together(tmp_path):
    from halp_bench.results.cell_files import store_cell_row
    from halp_bench.results.store import append_result

    append_result(tmp_path / "results.jsonl", {"method": "old", "finished": "2020"})
    store_cell_row(tmp_path, ("m", "d", "s", "knn", "cpu", 0, None, "c1"), {"method": "b", "finished": "2026-02"})
    store_cell_row(tmp_path, ("m", "d", "s", "knn", "cpu", 1, None, "c1"), {"method": "a", "finished": "2026-01"})
    store_cell_row(tmp_path, ("m", "d", "s", "knn", "cpu", 0, None, "c1"), {"method": "c", "finished": "2026-03"})  # the same cell again
    append_result(tmp_path / "results.jsonl", {"method": "c", "finished": "2026-03", "cell_file": "m_knn_seed0_x.json"})  # a cell's log copy
    assert [r["method"] for r in load_results(tmp_path / "results.jsonl")] == ["old", "a", "c"]


def test_a_claim_of_a_slurm_job_on_another_node_that_no_longer_runs_is_taken_over(tmp_path, monkeypatch):
    from halp_bench.results import claims

    claim = try_claim(tmp_path, "run-d", {}, ttl=600)
    claim._stop.set()
    claim._beat.join()
    holder = json.loads(claim.path.read_text())
    holder.update(host="another-node", job="77")
    claim.path.write_text(json.dumps(holder))
    monkeypatch.setattr(claims, "slurm_job_gone", lambda job: False)  # still running there
    assert isinstance(try_claim(tmp_path, "run-d", {}, ttl=600), Holder)
    monkeypatch.setattr(claims, "slurm_job_gone", lambda job: job == "77")  # cancelled: no need to wait out the TTL
    taken = try_claim(tmp_path, "run-d", {}, ttl=600)
    assert isinstance(taken, Claim)
    taken.release()
