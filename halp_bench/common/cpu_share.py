"""A fair share of the machine's cores for each halp-bench process running on it.

PyTorch's CPU build runs every parallel operator on an OpenMP team of one thread per core, and
each operator ends at a barrier that waits for the whole team. When two such processes run on the
same cores, every barrier waits for a thread that the other process has descheduled, and a step
that takes milliseconds alone takes a scheduler time slice or more: two default runs on a 2-core
machine were measured at 4x to 55x their time alone (benchmarks/bench_concurrent.py, docs/commands.md,
"Sharing a machine"). Spinning less (OMP_WAIT_POLICY=PASSIVE, a small GOMP_SPINCOUNT) does not
cure it and slows a run alone up to 2x; only keeping the total thread count within the cores does.

So every halp-bench process announces itself in a per-user directory (one file per process,
holding an exclusive `flock` for as long as the process lives, so a killed process leaves nothing
that counts) and takes `cores // processes` threads, re-checked at most once a second from the
training and evaluation loops (`rebalance`, called by the batch loader). A process alone keeps
every core, exactly as before. A thread count the user chose (`--threads`, `OMP_NUM_THREADS`,
`MKL_NUM_THREADS`, torchrun's default of 1) is kept as given and counted against the others'
share; `HALP_BENCH_SHARE_CPUS=0` turns the sharing off.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

CHECK_INTERVAL_S = 1.0  # how often a running process looks for newcomers and leavers
USER_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SWITCH_VARIABLE = "HALP_BENCH_SHARE_CPUS"  # "0": leave torch's thread count alone
DIRECTORY_VARIABLE = "HALP_BENCH_CPU_SHARE_DIR"  # where processes announce themselves (tests use their own)


def machine_cores() -> int:
    """Cores this process may run on (its CPU affinity, so `taskset` and cpusets are honoured)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def user_thread_count() -> int | None:
    """The thread count the environment fixes for torch (OMP_NUM_THREADS, MKL_NUM_THREADS), if any."""
    for name in USER_THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def share_directory() -> Path:
    return Path(os.environ.get(DIRECTORY_VARIABLE) or Path(tempfile.gettempdir()) / f"halp-bench-cpu-{os.getuid()}")


class CpuShare:
    """This process's entry among the halp-bench processes of one machine.

    An entry file holds "adaptive" (takes a fair share) or the fixed thread count of its process.
    """

    def __init__(self, directory: Path, cores: int, name: str | None = None):
        self.directory, self.cores = Path(directory), cores
        self.name = name or str(os.getpid())
        self._handle: int | None = None

    def join(self, fixed: int | None) -> None:
        """Announce this process. The file is locked before it gets its final name, so a peer never
        mistakes a process that is still joining for one that died."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{self.name}.", dir=self.directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._handle = fd
        self.set_fixed(fixed)
        os.replace(temporary, self.directory / self.name)

    def set_fixed(self, fixed: int | None) -> None:
        assert self._handle is not None
        text = b"adaptive" if fixed is None else str(fixed).encode()
        os.ftruncate(self._handle, 0)
        os.pwrite(self._handle, text, 0)

    def leave(self) -> None:
        if self._handle is None:
            return
        (self.directory / self.name).unlink(missing_ok=True)
        os.close(self._handle)
        self._handle = None

    def peers(self) -> list[int | None]:
        """The other live processes: each one's fixed thread count, or None for an adaptive one.
        Files of processes that died (their lock is free) are removed on the way."""
        found: list[int | None] = []
        try:
            names = [n for n in os.listdir(self.directory) if n != self.name and not n.startswith(".")]
        except FileNotFoundError:
            return found
        for name in names:
            path = self.directory / name
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # held: the process is alive
                    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    found.append(int(text) if text.isdigit() else None)
                else:  # nobody holds it: its process is gone
                    path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return found

    def fair_threads(self) -> int:
        """cores minus the fixed counts of others, split evenly among the adaptive processes."""
        peers = self.peers()
        fixed = sum(p for p in peers if p is not None)
        adaptive = 1 + sum(p is None for p in peers)
        return max(1, min(self.cores, (self.cores - fixed) // adaptive))


def fair_share() -> int:
    """The cores a process starting now would get (e.g. how many workers `prepare` starts)."""
    if os.environ.get(SWITCH_VARIABLE, "1").strip() == "0":
        return machine_cores()
    return CpuShare(share_directory(), machine_cores()).fair_threads()


class _State:
    share: CpuShare | None = None
    fixed: int | None = None
    checked_at: float = 0.0
    depth: int = 0


_state = _State()


def _apply(threads: int) -> None:
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def rebalance(force: bool = False) -> None:
    """Take this process's current fair share (at most once per CHECK_INTERVAL_S unless `force`).
    A no-op outside `share_cpus` and for a fixed thread count. Call it from the thread that runs
    the model: OpenMP's thread count is a per-thread setting."""
    share = _state.share
    if share is None or _state.fixed is not None:
        return
    now = time.monotonic()
    if not force and now - _state.checked_at < CHECK_INTERVAL_S:
        return
    _state.checked_at = now
    _apply(share.fair_threads())


def pin(threads: int) -> None:
    """Fix this process's thread count at `threads` until the enclosing `share_cpus` block ends
    (announced to the others as fixed; `rebalance` leaves it alone). A resumed deterministic run
    pins the count its checkpoint was made with: the count changes floating-point sums."""
    if _state.depth == 0:  # a library caller outside any block: torch's count only
        _apply(threads)
        return
    _state.fixed = threads
    if _state.share is not None:
        _state.share.set_fixed(threads)
    _apply(threads)


@contextmanager
def share_cpus(threads: int | None = None, *, adapt: bool = True) -> Iterator[None]:
    """Within this block, this process runs `threads` torch threads if given (or the count the
    environment fixes), otherwise its fair share of the cores among halp-bench processes, kept
    up to date by `rebalance`. `adapt=False` (deterministic runs) keeps the machine's default
    count for the whole block, announced as fixed. Torch's previous count is restored afterwards.
    Nested blocks change the count for their duration."""
    if threads is not None and threads < 1:
        from halp_bench.errors import ConfigError

        raise ConfigError(f"--threads {threads}: expected a count >= 1")
    previous_threads, previous_fixed = torch.get_num_threads(), _state.fixed
    enabled = os.environ.get(SWITCH_VARIABLE, "1").strip() != "0"
    fixed = threads or user_thread_count() or (None if adapt else (previous_threads if _state.depth == 0 else previous_fixed))
    outermost = _state.depth == 0
    if outermost and enabled and hasattr(fcntl, "flock"):
        _state.share = CpuShare(share_directory(), machine_cores())
        try:
            _state.share.join(fixed)
        except OSError:  # an unwritable temporary directory: run with torch's own count
            _state.share = None
    elif _state.share is not None:
        _state.share.set_fixed(fixed)
    _state.fixed, _state.depth = fixed, _state.depth + 1
    if fixed is not None:
        _apply(fixed)
    else:
        rebalance(force=True)
    try:
        yield
    finally:
        _state.depth -= 1
        _state.fixed = previous_fixed
        if outermost and _state.share is not None:
            _state.share.leave()
            _state.share = None
        elif _state.share is not None:
            _state.share.set_fixed(previous_fixed)
        _apply(previous_threads)
