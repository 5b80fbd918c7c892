"""The prepared directory while `halp-bench prepare` writes it: claiming `out`, the partial
memory-mapped array and its progress, and finalising (the kept rows moved into place, the small
arrays, then meta.json last and atomically)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import halp_bench
from halp_bench.datasets.formats.prepared_dir import DATA_FILE, JOB_FILE, META_FILE, PARTIAL_DIR, array_files, read_job, read_meta, save_array, write_meta
from halp_bench.datasets.raw.ntu import PUBLISHED_SPLIT_COUNTS
from halp_bench.datasets.raw.plan import Plan
from halp_bench.errors import ConfigError, DataError

NUM_JOINTS, NUM_BODIES = 25, 2

COMPACT_FILE = "compact.npy"
COPY_CHUNK = 256  # rows per step when compacting the array
PROGRESS_FILE = "progress.npy"  # (N, 4) int64: stored length (-1 = not done yet), true length, the agcn body choice


def claim_output(out: Path, fingerprint: str, force: bool) -> dict[str, Any] | None:
    """Make `out` ready: returns the meta of an identical finished prepare (nothing to do), else
    None after clearing our own stale files. A foreign non-empty directory needs `force`."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    try:
        meta = read_meta(out) if out.is_dir() else None
    except DataError:
        meta = None  # a meta.json that is not ours: the directory is foreign
    job = read_job(out) if out.is_dir() else None
    if not force:
        if meta is not None and job is None and meta.get("fingerprint") == fingerprint:
            return meta
        if job is not None and job.get("fingerprint") == fingerprint:
            return None
        if out.is_dir() and any(out.iterdir()):
            if meta is not None or job is not None:
                raise ConfigError(f"--out {out}: holds a prepared (or unfinished) dataset made from other raw files or options; pass --force to replace it")
            raise ConfigError(
                f"--out {out}: is not empty and is not a halp-bench prepared directory; choose a new or empty directory, or pass --force to write into it"
            )
    remove_ours(out, meta)
    return None


def remove_ours(out: Path, meta: dict[str, Any] | None) -> None:
    """Delete the files a prepare writes (meta.json first), never anything else in `out`."""
    if meta is not None:
        (out / META_FILE).unlink()
        for file in [DATA_FILE, *array_files(meta)]:
            (out / file).unlink(missing_ok=True)
    partial = out / PARTIAL_DIR
    if partial.is_dir():
        for file in (JOB_FILE, PROGRESS_FILE, DATA_FILE, COMPACT_FILE):
            (partial / file).unlink(missing_ok=True)
        partial.rmdir()


def open_partial(out: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, Path]:
    """(writable memmap of the array, progress (N, 2), the array's path), resumed where valid."""
    partial = out / PARTIAL_DIR
    source = partial / DATA_FILE
    n = shape[0]
    try:
        done = np.load(partial / PROGRESS_FILE, allow_pickle=False)
        if done.shape != (n, 4):
            raise ValueError("progress of another shape")
        if not source.exists() and (done[:, 0] >= 0).all():
            source = out / DATA_FILE  # interrupted right after the array was moved into place
        data = np.load(source, mmap_mode="r+", allow_pickle=False)
        if data.shape != shape or data.dtype != np.float32:
            raise ValueError("array of another shape")
        return data, done, source
    except (OSError, ValueError, EOFError):
        pass  # nothing usable to resume: start the array afresh
    source = partial / DATA_FILE
    data = np.lib.format.open_memmap(source, mode="w+", dtype=np.float32, shape=shape)
    done = np.full((n, 4), -1, dtype=np.int64)
    save_array(partial / PROGRESS_FILE, done)
    return data, done, source


def checkpoint_rows(partial: Path, data: np.ndarray, done: np.ndarray) -> None:
    """Array rows reach the disk before the progress that says they are done."""
    data.flush()
    save_array(partial / PROGRESS_FILE, done)


def finalise(
    out: Path,
    plan: Plan,
    data: np.ndarray,
    done: np.ndarray,
    source: Path,
    failed: list[tuple[str, str]],
    normalize: bool,
    max_frames: int,
    fingerprint: str,
    raw_dirs: list[Path],
) -> dict[str, Any]:
    keep = np.flatnonzero(done[:, 0] >= 0)
    if not len(keep):
        raise DataError(failed[0][0] if failed else out, f"no sample could be read; first error: {failed[0][1] if failed else '?'}")
    partial = out / PARTIAL_DIR
    target = out / DATA_FILE
    if len(keep) == len(done):
        if source != target:
            os.replace(source, target)
    else:  # drop the failed rows: copy the kept ones into a new array
        compact = np.lib.format.open_memmap(partial / COMPACT_FILE, mode="w+", dtype=np.float32, shape=(len(keep), *data.shape[1:]))
        for start in range(0, len(keep), COPY_CHUNK):
            compact[start : start + COPY_CHUNK] = data[keep[start : start + COPY_CHUNK]]
        compact.flush()
        del compact
        os.replace(partial / COMPACT_FILE, target)
    splits = {name: mask[keep] for name, mask in plan.splits.items()}
    save_array(out / "lengths.npy", done[keep, 0])
    save_array(out / "labels.npy", plan.labels[keep])
    save_array(out / "names.npy", np.array(plan.names)[keep])
    metadata = dict(plan.metadata)
    if data.shape[-1] > NUM_BODIES:
        metadata.update(agcn_body0=done[:, 2], agcn_body1=done[:, 3])
    for key, values in metadata.items():
        save_array(out / f"meta_{key}.npy", values[keep])
    for name, mask in splits.items():
        save_array(out / f"split_{name}.npy", mask)
    meta = prepared_meta(plan, data, done, keep, splits, metadata, failed, normalize, max_frames, fingerprint, raw_dirs)
    write_meta(out, meta)
    remove_ours(out, None)
    return meta


def prepared_meta(
    plan: Plan,
    data: np.ndarray,
    done: np.ndarray,
    keep: np.ndarray,
    splits: dict[str, np.ndarray],
    metadata: dict[str, np.ndarray],
    failed: list[tuple[str, str]],
    normalize: bool,
    max_frames: int,
    fingerprint: str,
    raw_dirs: list[Path],
) -> dict[str, Any]:
    """meta.json of a finished prepare: what it holds, its splits beside the published counts, what
    was skipped or failed, and what it was made from."""
    published = PUBLISHED_SPLIT_COUNTS.get(plan.dataset, {})
    meta = {
        "dataset": plan.dataset,
        "num_samples": len(keep),
        "num_classes": plan.num_classes,
        "layout": "ntu25",
        "default_split": "xsub",
        "max_frames": max_frames,
        "normalized": normalize,
        "stored": "agcn" if normalize else "raw",
        "bodies": int(data.shape[-1]),
        "splits": {
            name: {"train": int(mask.sum()), "test": int((~mask).sum()), "published": list(published[name]) if name in published else None}
            for name, mask in splits.items()
        },
        "metadata": list(metadata),
        "skipped": plan.skipped,
        "failed": [{"file": file, "reason": reason} for file, reason in failed],
        "truncated": int((done[keep, 1] > max_frames).sum()),
        "fingerprint": fingerprint,
        "raw": [str(d.resolve()) for d in raw_dirs],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "halp_bench_version": halp_bench.__version__,
    }
    return meta
