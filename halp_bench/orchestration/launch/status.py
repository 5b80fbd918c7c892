"""`halp-bench status --out DIR`: every cell of the store's grids, read from the store alone.

The units are those of the job records (`<out>/jobs/`, written when a launcher submits) and of the
claims (`<out>/claims/`, taken by every process that pretrains, launched or not). A cell is
- done: its row is stored (a row from the unit's run directory, or, for a unit that never ran
  here, a row of the same method, seed, preset, protocol and dataset);
- running: the claim on its run directory is live (job, node, epoch from the run's log.csv, time
  left from Slurm);
- failed: its error was noted in the claim, the job ended without its row, or its process died;
- queued: its job is waiting in the scheduler (a job that started and has not claimed yet is running);
- skipped: its job ran and the protocol does not apply (e.g. no transfer target).
A unit that no launcher submitted and no process claimed is "new" (not listed by `status`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from halp_bench.orchestration.launch.plan import read_job_records, unit_id
from halp_bench.results.claims import ClaimState, all_claims, claim_ttl
from halp_bench.results.store import RESULTS_FILE, load_results

STATES = ("done", "running", "queued", "failed", "skipped")
ALIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "PREEMPTED",
    "SIGNALING",
    "STAGE_OUT",
}


@dataclass
class CellStatus:
    method: str
    seed: int
    dataset: str
    protocol: str
    state: str
    job: str | None = None
    node: str | None = None
    epoch: str | None = None  # "done/total" of the pretraining
    time_left: str | None = None
    error: str | None = None
    log: str | None = None
    top1: float | None = None


class Scheduler:
    """What the scheduler says of jobs: Slurm's squeue (one call), or, locally, whether the pid lives."""

    def __init__(self, launcher: str | None = None):
        self._slurm: dict[str, tuple[str, str, str]] | None = None
        self.launcher = launcher

    def slurm_jobs(self) -> dict[str, tuple[str, str, str]]:
        """Job id (array tasks as 12_3) -> (state, time left, node), for every job squeue lists."""
        if self._slurm is None:
            self._slurm = {}
            if shutil.which("squeue"):
                try:
                    text = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%L|%N"], capture_output=True, text=True, timeout=30).stdout
                except (OSError, subprocess.SubprocessError):
                    text = ""
                for line in text.splitlines():
                    parts = line.strip().split("|")
                    if len(parts) == 4:
                        self._slurm[parts[0]] = (parts[1], parts[2], parts[3])
        return self._slurm

    def alive(self, record: dict[str, Any]) -> tuple[bool, str | None, str | None, str | None]:
        """(whether the job may still run, its state, time left, node)."""
        job = str(record.get("job_id"))
        if record.get("launcher") == "slurm":
            state, left, node = self.slurm_jobs().get(job, (None, None, None))
            return state in ALIVE, state, left, node
        try:
            os.kill(int(job), 0)
        except (ValueError, ProcessLookupError):
            return False, None, None, None
        except PermissionError:
            pass
        return True, "RUNNING", None, None


def _protocols(unit: dict[str, Any]) -> list[str]:
    if unit.get("protocols"):
        return list(unit["protocols"])
    from halp_bench.orchestration.grid import DEFAULT_PROTOCOLS

    return list(DEFAULT_PROTOCOLS)


def _epoch(out: Path, run_name: str, total: int) -> str:
    try:
        lines = (out / "runs" / run_name / "log.csv").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    return f"{max(len(lines) - 1, 0)}/{total}"


def _row_matches(row: dict[str, Any], unit: dict[str, Any], protocol: str, run_names: set[str]) -> bool:
    if row.get("method") != unit["method"] or row.get("seed") != unit["seed"] or row.get("protocol") != protocol:
        return False
    if run_names:
        return Path(str(row.get("run_dir", ""))).name in run_names
    same_data = row.get("dataset") == unit["dataset"] or protocol == "transfer"
    return same_data and row.get("preset") == unit["preset"] and (unit.get("split") in (None, row.get("split")))


def unit_cells(
    out: Path, unit: dict[str, Any], record: dict[str, Any] | None, claims: dict[str, ClaimState], rows: list[dict[str, Any]], scheduler: Scheduler
) -> list[CellStatus]:
    """The status of each cell of one unit."""
    uid, ttl = unit_id(unit), claim_ttl()
    mine = {name: state for name, state in claims.items() if state.holder is not None and unit_id(state.holder.unit) == uid}
    live = next(((name, state) for name, state in mine.items() if state.live(ttl)), None)
    alive, job_state, left, node = scheduler.alive(record) if record else (False, None, None, None)
    log = (record or {}).get("log")
    cells = []
    for protocol in _protocols(unit):
        cell = CellStatus(unit["method"], unit["seed"], unit["dataset"], protocol, "new", job=(record or {}).get("job_id"), log=log)
        row = next((r for r in reversed(rows) if _row_matches(r, unit, protocol, set(mine))), None)
        ended = (record or {}).get("outcomes", {}).get(protocol)
        failures = {name: s.holder.failures[protocol] for name, s in mine.items() if s.holder and protocol in s.holder.failures}
        if row is not None:
            cell.state, cell.top1 = "done", (row.get("metrics") or {}).get("top1")
        elif live is not None:
            holder = live[1].holder
            cell.state, cell.job, cell.node = "running", holder.job or cell.job, holder.host
            cell.epoch, cell.time_left, cell.log = _epoch(out, live[0], holder.epochs), left, holder.log or log
        elif failures:
            cell.state, cell.error = "failed", next(iter(failures.values()))
        elif ended and ended[0] == "skipped" and not str(ended[1]).startswith(("running elsewhere", "already in")):
            cell.state, cell.error = "skipped", str(ended[1])
        elif ended and ended[0] == "failed":
            cell.state, cell.error = "failed", str(ended[1])
        elif alive:
            cell.state = "running" if job_state == "RUNNING" else "queued"  # running: started, not yet pretraining
            cell.time_left, cell.node = left, node
        elif mine and record is None and all(s.holder is not None and s.holder.released for s in mine.values()):
            cell.state, cell.error = "skipped", "its run ended without running it (see that run's output)"
        elif mine or record:
            cell.state = "failed"
            cell.error = "its job ended without a result" if record else "interrupted: its process ended without a result"
            cell.log = (record or {}).get("err") or log
        cells.append(cell)
    return cells


def store_units(out: Path, claims: dict[str, ClaimState]) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """Unit id -> (unit, its job record or None), from the job records and the claims."""
    units: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {uid: (rec["unit"], rec) for uid, rec in read_job_records(out).items()}
    for state in claims.values():
        if state.holder is not None and state.holder.unit and unit_id(state.holder.unit) not in units:
            units[unit_id(state.holder.unit)] = (state.holder.unit, None)
    return units


def grid_status(out: Path, scheduler: Scheduler | None = None) -> list[CellStatus]:
    """Every cell of every unit the store knows, ordered by dataset, seed, method, protocol."""
    out, scheduler = Path(out), scheduler or Scheduler()
    claims, rows = all_claims(out), load_results(out / RESULTS_FILE)
    cells = []
    for unit, record in store_units(out, claims).values():
        cells += unit_cells(out, unit, record, claims, rows, scheduler)
    return sorted(cells, key=lambda c: (c.dataset, c.seed, c.method, c.protocol))


def unit_needs_work(out: Path, unit: dict[str, Any], scheduler: Scheduler) -> bool:
    """Whether a launcher should submit `unit`: some cell is neither done, skipped, queued nor running."""
    uid = unit_id(unit)
    record = read_job_records(out).get(uid)
    cells = unit_cells(out, unit, record, all_claims(out), load_results(Path(out) / RESULTS_FILE), scheduler)
    if any(c.state in ("queued", "running") for c in cells):
        return False
    return not cells or not all(c.state in ("done", "skipped") for c in cells)


def totals_line(cells: list[CellStatus]) -> str:
    counts = {state: sum(c.state == state for c in cells) for state in STATES}
    return f"{len(cells)} cells: " + ", ".join(f"{counts[s]} {s}" for s in STATES)


def as_json(cells: list[CellStatus]) -> dict[str, Any]:
    return {"cells": [asdict(c) for c in cells], "totals": {s: sum(c.state == s for c in cells) for s in STATES}, "total": len(cells)}
