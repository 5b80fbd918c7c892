"""Claims: one process at a time works on a pretraining (its run directory and its protocol cells).

Many processes (two `run`s started together, local or Slurm jobs on many nodes) may share one
`--out`. Before a process pretrains into `runs/<name>/` it claims `<name>`; a process that finds
the claim held by a live holder skips those cells ("running elsewhere"); a finished cell is never
run again because its row is in the store (results/cell_files.py), re-read right after the claim.

A claim is a generation file `<out>/claims/<name>/<generation>.json` created with O_CREAT|O_EXCL,
which is atomic on every NFS version (v3 and later), unlike file locks (node-local on `nolock`
mounts). The highest generation is the claim in force. Its holder keeps it fresh (a heartbeat
thread touches it every `ttl / 5` seconds) and marks it released at the end, with the error of any
failed cell. A claim is stale, and taken over by creating the next generation (exactly one
process wins that create), when it was released, when its holder is a dead process on this host,
when it belongs to an earlier run of this very Slurm job (requeued after preemption or its time
limit), when its holder ran on another node in a Slurm job that squeue says no longer runs
(cancelled, ended, requeued), or when its heartbeat is older than the TTL (a node that died; hosts' clocks must agree
within the TTL, as NTP keeps them). TTL: `$HALP_BENCH_CLAIM_TTL` seconds, default 600.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from halp_bench.common.atomic import atomic_write_bytes

CLAIMS_DIR = "claims"
DEFAULT_TTL_S = 600.0
NEW_FILE_GRACE_S = 30.0  # an empty claim file younger than this is a holder still writing it


def claim_ttl() -> float:
    """Seconds after its last heartbeat that a claim is stale (`$HALP_BENCH_CLAIM_TTL`)."""
    try:
        return max(float(os.environ.get("HALP_BENCH_CLAIM_TTL", DEFAULT_TTL_S)), 1.0)
    except ValueError:
        return DEFAULT_TTL_S


def job_id() -> str | None:
    """This process's scheduler job (Slurm's array-aware id, or submitit's local job id), if any."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")


@dataclass
class Holder:
    """Who holds (or held) a claim, and what for: written into the claim file."""

    host: str
    pid: int
    token: str
    job: str | None = None
    log: str | None = None  # the job's log file, when a launcher set $HALP_BENCH_JOB_LOG
    started: float = 0.0
    unit: dict[str, Any] = field(default_factory=dict)  # the work this claim covers (orchestration/launch/plan.py's unit)
    epochs: int = 0
    released: bool = False
    failures: dict[str, str] = field(default_factory=dict)  # protocol -> error line

    @classmethod
    def here(cls, unit: dict[str, Any], epochs: int) -> Holder:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex, job_id(), os.environ.get("HALP_BENCH_JOB_LOG"), time.time(), unit, epochs)

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}" + (f", job {self.job}" if self.job else "")


@dataclass
class ClaimState:
    """The claim in force on a run directory, as read from its newest generation file."""

    holder: Holder | None  # None: a file still being written
    generation: int
    heartbeat: float  # the file's modification time
    path: Path

    def live(self, ttl: float) -> bool:
        """Whether the holder may still be working (see the module docstring for the rules)."""
        age = time.time() - self.heartbeat
        holder = self.holder
        if holder is None:
            return age < NEW_FILE_GRACE_S
        if holder.released or age > ttl:
            return False
        if holder.host == socket.gethostname() and holder.pid != os.getpid() and not _pid_alive(holder.pid):
            return False
        mine = job_id()
        if mine and holder.job == mine and holder.pid != os.getpid():
            return False  # an earlier run of this very (requeued) job
        return not (holder.host != socket.gethostname() and holder.job and slurm_job_gone(holder.job))


SLURM_RUNNING = ("RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "SIGNALING", "STAGE_OUT")


def slurm_job_gone(job: str) -> bool:
    """Whether Slurm says the job `job` no longer runs (ended, cancelled, or waiting again after a
    requeue), so its claim need not wait out the TTL. False when that cannot be known (no squeue,
    or squeue failing for another reason): the TTL decides then."""
    if shutil.which("squeue") is None:
        return False
    try:
        done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        return "invalid job id" in done.stderr.lower()
    return not any(state.strip() in SLURM_RUNNING for state in done.stdout.splitlines())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_claim(folder: Path) -> ClaimState | None:
    """The newest generation of the claims in `folder`, or None when there is none."""
    generations = sorted(int(p.stem) for p in folder.glob("[0-9]*.json") if p.stem.isdigit()) if folder.is_dir() else []
    if not generations:
        return None
    path = folder / f"{generations[-1]:06d}.json"
    try:
        heartbeat = path.stat().st_mtime
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ClaimState(None, generations[-1], time.time(), path)
    try:
        holder = Holder(**json.loads(text))
    except (ValueError, TypeError):
        holder = None
    return ClaimState(holder, generations[-1], heartbeat, path)


class Claim:
    """A claim this process holds: kept fresh by a heartbeat thread until `release`."""

    def __init__(self, path: Path, holder: Holder, ttl: float):
        self.path, self.holder = path, holder
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(max(ttl / 5, 0.2),), daemon=True)
        self._beat.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                os.utime(self.path)
            except OSError:
                pass  # a lost claim shows in `still_held`; the heartbeat itself must never fail the run

    def still_held(self) -> bool:
        """Whether no other process took the claim over (this one was thought dead)."""
        state = read_claim(self.path.parent)
        return state is not None and state.holder is not None and state.holder.token == self.holder.token

    def note_failure(self, protocol: str, error: str) -> None:
        self.holder.failures[protocol] = error.splitlines()[0] if error else "failed"

    def release(self) -> None:
        """Stop the heartbeat and mark the claim released (with the failures noted), if still ours."""
        self._stop.set()
        self._beat.join(timeout=5)
        if self.still_held():
            self.holder.released = True
            _write_holder(self.path, self.holder)


def _write_holder(path: Path, holder: Holder) -> None:
    text = json.dumps(asdict(holder), sort_keys=True).encode()
    atomic_write_bytes(path, lambda handle: handle.write(text))


def try_claim(out: Path, name: str, unit: dict[str, Any], epochs: int = 0, ttl: float | None = None) -> Claim | Holder:
    """Claim the run directory `name` of the store `out`: a Claim, or the live Holder that has it."""
    ttl = claim_ttl() if ttl is None else ttl
    folder = Path(out) / CLAIMS_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        state = read_claim(folder)
        if state is not None and state.live(ttl):
            return state.holder or Holder("?", 0, "", unit=unit)
        generation = 0 if state is None else state.generation + 1
        path = folder / f"{generation:06d}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue  # another process took this generation first: look again
        holder = Holder.here(unit, epochs)
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(asdict(holder), sort_keys=True).encode())
            handle.flush()
            os.fsync(handle.fileno())
        return Claim(path, holder, ttl)


def all_claims(out: Path) -> dict[str, ClaimState]:
    """Run-directory name -> the claim in force, for every claimed run directory of the store."""
    root = Path(out) / CLAIMS_DIR
    found = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        state = read_claim(folder)
        if state is not None:
            found[folder.name] = state
    return found
