"""One streamed pass over a dataset's big array: a content digest and a few statistics per sample.

Why: the data checks (checks.py), the data report (report.py) and the fingerprint
(fingerprint.py) all need to have seen every value, and an NTU-sized array (18 GB) must never be
loaded whole. The pass reads the (memory-mapped) array in chunks of about `CHUNK_BYTES`,
vectorised per chunk, and keeps per sample only a few dozen bytes. It runs once per loaded
dataset; for data read from files the result is also cached on disk, keyed by those files' path,
size, modification time and inode (`cache_key`), so a later run does not read the array again.
The cache lives in `cache_dir()`: $HALP_BENCH_CACHE, else $XDG_CACHE_HOME/halp-bench, else
~/.cache/halp-bench, in `datacheck/`. A directory that cannot be written only costs the reuse.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.common.progress import progress_bar
from halp_bench.errors import OutputError

SCAN_VERSION = 1  # bump when what a scan holds or how it is computed changes: older caches are then ignored
CHUNK_BYTES = 8 << 20  # per step: small enough to stay in the CPU cache across the passes over a chunk
DIGEST_BYTES = 16  # of each sample's SHA-256
ENV_CACHE = "HALP_BENCH_CACHE"
CACHE_SUBDIR = "datacheck"


@dataclass(frozen=True)
class SampleScan:
    """Per sample of an (N, C, T, V, M) array. Statistics are over the finite non-zero values:
    zeros are padding, absent bodies or lost joints, and would hide the coordinate range."""

    digests: np.ndarray  # (N, DIGEST_BYTES) uint8: SHA-256 of the sample's float32 bytes, truncated
    nonfinite: np.ndarray  # (N,) int64: NaN and Inf values
    persons: np.ndarray  # (N, M) bool: body m has a non-zero value
    extent: np.ndarray  # (N,) int64: one past the last frame with a non-zero value (0: the sample is all zero)
    count: np.ndarray  # (N, C) int64: finite non-zero values per channel
    total: np.ndarray  # (N, C) float64: their sum
    squares: np.ndarray  # (N, C) float64: the sum of their squares
    low: np.ndarray  # (N, C) float32: their minimum (+inf when there is none)
    high: np.ndarray  # (N, C) float32: their maximum (-inf when there is none)
    origin: str = "computed"  # "computed", "cached" (read from the cache file) or "computed, not cached (why)"
    cache_file: str = ""  # where it is (or would be) cached; "" for data that is not read from files

    def __len__(self) -> int:
        return len(self.digests)


ARRAY_FIELDS = tuple(f.name for f in fields(SampleScan) if f.name not in ("origin", "cache_file"))


def scan_chunk(x: np.ndarray) -> dict[str, np.ndarray]:
    """The per-sample entries of `SampleScan` for one chunk `x` (n, C, T, V, M) float32. Every
    reduction runs over contiguous memory (the formulations were chosen by measured speed)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, channels, frames, joints, persons = x.shape
    per_channel = frames * joints * persons
    digests = np.frombuffer(b"".join(hashlib.sha256(memoryview(sample)).digest()[:DIGEST_BYTES] for sample in x), dtype=np.uint8)
    flat = x.reshape(n, channels, per_channel)
    total = flat.sum(axis=2, dtype=np.float64)
    nonfinite = np.zeros(n, dtype=np.int64)
    if not np.isfinite(total).all():  # rare: count the bad values, then leave them out of the statistics
        finite = np.isfinite(x)
        nonfinite = channels * per_channel - finite.reshape(n, channels * per_channel).sum(axis=1, dtype=np.int64)
        x = np.where(finite, x, np.float32(0))
        flat = x.reshape(n, channels, per_channel)
        total = flat.sum(axis=2, dtype=np.float64)
    nonzero = x != 0
    used_frames = nonzero.any(axis=(1, 3, 4))  # (n, T)
    extent = np.where(used_frames.any(axis=1), frames - np.argmax(used_frames[:, ::-1], axis=1), 0)
    by_person = np.ascontiguousarray(nonzero.reshape(n, channels * frames * joints, persons).transpose(0, 2, 1))  # (n, M, C*T*V)
    mask = nonzero.reshape(n, channels, per_channel)
    return {
        "digests": digests.reshape(n, DIGEST_BYTES),
        "nonfinite": nonfinite,
        "persons": by_person.any(axis=2),
        "extent": extent.astype(np.int64),
        "count": mask.sum(axis=2, dtype=np.int64),
        "total": total,
        "squares": np.einsum("ncj,ncj->nc", flat, flat).astype(np.float64),
        "low": _extreme(flat, mask, np.minimum),
        "high": _extreme(flat, mask, np.maximum),
    }


def _extreme(flat: np.ndarray, mask: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """(n, C) minimum (np.minimum) or maximum (np.maximum) over the values `mask` keeps. The plain
    extreme is right wherever it is not zero's side of 0 (a kept value beats the zeros); only
    those rows are reduced again with the zeros masked out (masked reductions are slow)."""
    result = reduce.reduce(flat, axis=2)
    bound = np.float32(np.inf if reduce is np.minimum else -np.inf)
    redo = result >= 0 if reduce is np.minimum else result <= 0
    if redo.any():
        result[redo] = reduce.reduce(np.where(mask[redo], flat[redo], bound), axis=1)
    return result


def compute_scan(data: np.ndarray, progress: bool = False, workers: int = 1, label: str = "") -> SampleScan:
    """Scan `data` (N, C, T, V, M) chunk by chunk (a memory-mapped array is read once, in order).
    `workers` threads scan chunks side by side (hashing and numpy release the GIL)."""
    n = len(data)
    per_sample = max(1, int(np.prod(data.shape[1:])) * 4)
    step = max(1, CHUNK_BYTES // per_sample)
    starts = range(0, max(n, 1), step)  # an empty array still gives (empty) per-sample arrays
    parts: list[dict[str, np.ndarray]] = []
    with progress_bar(progress) as bar, ThreadPoolExecutor(max(1, workers)) as pool:
        task = bar.add_task(f"checking {label or 'data'}", total=n)
        # at most 2 * workers chunks in flight, so memory stays flat whatever N is
        pending = []
        for start in starts:
            pending.append(pool.submit(scan_chunk, data[start : start + step]))
            if len(pending) >= 2 * max(1, workers):
                parts.append(pending.pop(0).result())
                bar.update(task, advance=len(parts[-1]["extent"]))
        for future in pending:
            parts.append(future.result())
            bar.update(task, advance=len(parts[-1]["extent"]))
    return SampleScan(**{k: np.concatenate([p[k] for p in parts]) for k in ARRAY_FIELDS})


def cache_dir() -> Path:
    """Where scans of file-backed data are kept (see the module docstring)."""
    if os.environ.get(ENV_CACHE):
        root = Path(os.environ[ENV_CACHE])
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "halp-bench"
    else:
        root = Path.home() / ".cache" / "halp-bench"
    return root / CACHE_SUBDIR


def cache_key(files: Sequence[str | Path], shape: tuple[int, ...]) -> str:
    """Names the scan of an array read from `files`: changes when any of them is replaced or
    written (its size, modification time or inode changes), or the array's shape does."""
    identity = []
    for file in files:
        path = Path(file).resolve()
        stat = path.stat()
        identity.append([str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino])
    text = json.dumps({"version": SCAN_VERSION, "files": identity, "shape": list(shape)})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read_cache(path: Path, n: int) -> SampleScan | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            values = {k: stored[k] for k in ARRAY_FIELDS}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or damaged: scan again (and overwrite it)
    if any(len(v) != n for v in values.values()):
        return None
    return SampleScan(**values, origin="cached", cache_file=str(path))


def _write_cache(path: Path, scan: SampleScan) -> str:
    """Store `scan`; returns how the scan should describe its origin."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: getattr(scan, k) for k in ARRAY_FIELDS})
    try:
        atomic_write_bytes(path, lambda handle: handle.write(buffer.getvalue()))
    except OutputError as exc:
        return f"computed, not cached ({exc})"
    return "computed"


def scan_samples(
    data: np.ndarray, files: Sequence[str | Path] = (), progress: bool = False, refresh: bool = False, workers: int = 1, label: str = ""
) -> SampleScan:
    """The scan of `data`: read from the cache when `data` was read from `files` and they are
    unchanged since it was cached (unless `refresh`), else computed (and cached for `files`)."""
    if not files:
        return compute_scan(data, progress, workers, label)
    path = cache_dir() / f"{cache_key(files, tuple(data.shape))}.npz"
    if not refresh:
        cached = _read_cache(path, len(data))
        if cached is not None:
            return cached
    scan = compute_scan(data, progress, workers, label)
    return replace(scan, origin=_write_cache(path, scan), cache_file=str(path))
