"""Peak memory of one grid cell (not of the whole process) and wall-time per epoch.

CUDA: `max_memory_allocated` after a reset. CPU on Linux: the kernel's resident high-water mark
(VmHWM), reset at the start of the cell (after returning freed heap to the OS) by writing 5 to
/proc/self/clear_refs; where that is not
possible, a background thread samples the resident size every few milliseconds.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def _release_free_heap() -> None:
    """Return freed heap pages to the OS (glibc `malloc_trim`), so that memory an earlier cell
    freed but the allocator kept resident is not counted as this cell's."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is only less tight
        pass


class PeakMemory:
    """Use as a context manager around one cell; then read `peak_mb` and `increase_mb`."""

    def __init__(self, device: torch.device):
        self.device = device
        self.start_mb = 0.0
        self._peak_kb = 0
        self._sampling = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            _release_free_heap()
            self.start_mb = (_status_kb("VmRSS") or 0) / 1024
            if not _reset_hwm():
                self._sampling = True
                self._thread = threading.Thread(target=self._sample, daemon=True)
                self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak_kb = max(self._peak_kb, _status_kb("VmRSS") or 0)

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    @property
    def peak_mb(self) -> float:
        """Highest memory in use during the cell (CUDA: allocated tensors; CPU: resident set)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self._sampling:
            return max(self._peak_kb, _status_kb("VmRSS") or 0) / 1024
        return (_status_kb("VmHWM") or 0) / 1024

    @property
    def increase_mb(self) -> float:
        """Peak minus what was in use when the cell started (what the cell itself added)."""
        return max(self.peak_mb - self.start_mb, 0.0)


class Stopwatch:
    """Wall time that waits for queued GPU work, so CUDA timings are not flattered."""

    def __init__(self, device: torch.device):
        self.device = device
        self._start = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self._start = time.perf_counter()

    def elapsed(self) -> float:
        self._sync()
        return time.perf_counter() - self._start
