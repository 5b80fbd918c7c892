"""`halp-bench prepare`: raw NTU RGB+D 60/120 or PKU-MMD II files -> a prepared directory.

Why it is built this way: a full prepare reads ~100k text files (an hour single-threaded), so it
runs on parallel workers, shows progress, and survives interruption. Samples are written straight
into a memory-mapped `.halp-bench-partial/data.npy`; after the array is flushed, a small progress
file records which rows are done, so a rerun of the same command skips them. Finalising moves the
array into place, writes the small arrays, then `meta.json` last and atomically: until then the
directory is never taken for a complete dataset. Nothing is written outside `out`, and `out` must
be empty, ours, or explicitly `--force`d.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shlex
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

import halp_bench
from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.common.progress import progress_bar
from halp_bench.datasets.formats.prepared_dir import (
    DATA_FILE,
    JOB_FILE,
    META_FILE,
    PARTIAL_DIR,
    PREPARED_DATASETS,
    array_files,
    read_job,
    read_meta,
    save_array,
    write_meta,
)
from halp_bench.datasets.raw.normalize import pre_normalize
from halp_bench.datasets.raw.ntu import (
    PUBLISHED_SPLIT_COUNTS,
    energy_order,
    get_spec,
    ntu_sample_names,
    ntu_split_masks,
    parse_ntu_name,
    read_missing_list,
    read_skeleton,
    select_bodies,
)
from halp_bench.datasets.raw.pku import PKU_NUM_CLASSES, PkuSegment, pku_segments, read_pku_labels, read_pku_skeleton, read_pku_split
from halp_bench.errors import ConfigError, DataError, UnknownNameError

NUM_JOINTS, NUM_BODIES = 25, 2
RAW_NTU_BODIES = 4  # the bodies every pipeline may need (the 2s-AGCN reader reads up to 4), kept in file order
PROGRESS_FILE = "progress.npy"  # (N, 4) int64: stored length (-1 = not done yet), true length, the agcn body choice
COMPACT_FILE = "compact.npy"
FLUSH_SECONDS = 5.0  # how much work an interruption can cost at most
COPY_CHUNK = 256  # rows per step when compacting the array
MISSING_LISTS = {
    "ntu60": ("NTU_RGBD_samples_with_missing_skeletons.txt", "NTU_RGBD120_samples_with_missing_skeletons.txt"),
    "ntu120": ("NTU_RGBD120_samples_with_missing_skeletons.txt",),
}
PKU_SPLIT_FILES = {"xsub": "cross_subject_v2.txt", "xview": "cross_view_v2.txt"}
PKU_VIEWS = {"L": 1, "M": 2, "R": 3}


@dataclass
class PrepareSummary:
    """What a prepare did: counts for the summary table, and where the result is."""

    dataset: str
    out: Path
    samples: int  # in the prepared dataset
    read: int  # raw files read by this run (NTU samples, PKU videos)
    skipped_missing: int  # NTU samples dropped because they are on the official missing list
    failed: list[tuple[str, str]]  # (file or sample, reason): left out of the dataset
    truncated: int  # samples longer than max_frames, cut (their length is capped)
    splits: dict[str, tuple[int, int]]  # name -> (train, test)
    published: dict[str, tuple[int, int]]  # name -> (train, test) published, where known
    normalized: bool
    resumed: int = 0  # samples an earlier, interrupted run had already done
    seconds: float = 0.0
    already_complete: bool = False  # nothing to do: the same prepare had finished before

    @property
    def samples_per_second(self) -> float:
        return (self.samples - self.resumed) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Job:
    """One raw file for a worker and the output rows it fills (PKU: one per labelled segment)."""

    kind: str  # "ntu" or "pku"
    path: str
    first: int
    segments: tuple[PkuSegment, ...] = ()

    @property
    def count(self) -> int:
        return len(self.segments) if self.kind == "pku" else 1


@dataclass
class _JobResult:
    first: int
    data: np.ndarray | None  # (count, 3, max_frames, 25, bodies) float32
    lengths: np.ndarray | None  # stored lengths, <= max_frames
    true_lengths: np.ndarray | None
    error: str | None = None
    order: np.ndarray | None = None  # (count, 2) the body slots the agcn choice keeps (most active first)


@dataclass
class _Plan:
    """Everything known before any skeleton is read: samples, labels, splits and the jobs."""

    dataset: str
    num_classes: int
    names: list[str]
    labels: np.ndarray
    metadata: dict[str, np.ndarray]
    splits: dict[str, np.ndarray]
    jobs: list[_Job]
    fingerprint_items: list[str]  # one line per sample source: what a resume must match
    skipped: dict[str, Any] = field(default_factory=dict)  # left out before reading, and why


def prepare_dataset(
    name: str,
    raw: str | Path | list[str | Path] | list[Path],
    out: str | Path,
    *,
    workers: int,
    normalize: bool = False,
    max_frames: int = 300,
    progress: bool = True,
    force: bool = False,
    on_sample: Callable[[int], None] | None = None,
) -> PrepareSummary:
    """Prepare `name` ("ntu60", "ntu120" or "pku2") from the raw folder(s) `raw` into `out`.

    Rerunning the same command after an interruption finishes the job; rerunning it after it
    finished does nothing. `on_sample(done)` is called after each sample is stored (tests use it
    to simulate an interruption). Workers are spawned processes, so a script calling this with
    `workers > 1` needs the usual `if __name__ == "__main__":` guard.

    By default the array keeps what every data pipeline needs (datasets/pipelines.py): raw camera
    coordinates, NTU's bodies in file order (up to 4) and the agcn body choice as metadata
    (`agcn_body0`, `agcn_body1`, computed over the whole sequence). `normalize` writes instead the
    agcn pipeline's output (two bodies, pre-normalised), which only that pipeline can use.
    """
    started = time.perf_counter()
    if name not in PREPARED_DATASETS:
        raise UnknownNameError("dataset to prepare", name, list(PREPARED_DATASETS))
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1")
    if max_frames < 1:
        raise ConfigError(f"--max-frames {max_frames}: expected at least 1")
    raw_dirs = [Path(raw)] if isinstance(raw, (str, Path)) else [Path(r) for r in raw]
    for folder in raw_dirs:
        if not folder.is_dir():
            raise DataError(folder, "expected a folder of raw files (--raw)")
    out = Path(out)
    plan = _plan_ntu(name, raw_dirs) if name.startswith("ntu") else _plan_pku(raw_dirs)
    fingerprint = _fingerprint(plan, normalize, max_frames)
    meta = _claim(out, fingerprint, force)
    if meta is not None:
        return _summary_from_meta(out, meta, time.perf_counter() - started)

    partial = out / PARTIAL_DIR
    if read_job(out) is None:  # a fresh start; the job file first, so the directory is known as ours
        partial.mkdir(parents=True, exist_ok=True)
        command = _command(name, raw_dirs, out, normalize, max_frames)
        job = {"dataset": name, "fingerprint": fingerprint, "num_samples": len(plan.names), "command": command}
        atomic_write_bytes(partial / JOB_FILE, lambda handle: handle.write(json.dumps(job, indent=2).encode()))
    bodies = RAW_NTU_BODIES if name.startswith("ntu") and not normalize else NUM_BODIES
    shape = (len(plan.names), 3, max_frames, NUM_JOINTS, bodies)
    data, done, source = _open_partial(out, shape)
    resumed = int((done[:, 0] >= 0).sum())

    read, failures = _fill(plan, data, done, partial, workers, max_frames, normalize, progress, on_sample)
    failed = [failures[j.first] for j in plan.jobs if j.first in failures]
    meta = _finalise(out, plan, data, done, source, failed, normalize, max_frames, fingerprint, raw_dirs)
    del data
    return _summary_from_meta(out, meta, time.perf_counter() - started, read=read, resumed=resumed)


def _fill(
    plan: _Plan,
    data: np.ndarray,
    done: np.ndarray,
    partial: Path,
    workers: int,
    max_frames: int,
    normalize: bool,
    progress: bool,
    on_sample: Callable[[int], None] | None,
) -> tuple[int, dict[int, tuple[str, str]]]:
    """Run every job whose rows are not done yet, storing results as they come, and checkpoint
    (also when interrupted). Returns (files read, {first row: (file, reason)} of failed jobs)."""
    todo = [j for j in plan.jobs if (done[j.first : j.first + j.count, 0] < 0).any()]
    jobs_by_row = {j.first: j for j in plan.jobs}
    failures: dict[int, tuple[str, str]] = {}
    count = int((done[:, 0] >= 0).sum())
    last_flush = time.monotonic()
    try:
        with progress_bar(progress) as bar, closing(_results(todo, workers, max_frames, normalize)) as results:
            task = bar.add_task(f"prepare {plan.dataset}", total=len(plan.names), completed=count)
            for result in results:
                job = jobs_by_row[result.first]
                if result.error is not None:
                    failures[result.first] = (job.path, result.error)
                else:
                    rows = slice(result.first, result.first + job.count)
                    data[rows] = result.data
                    done[rows, 0], done[rows, 1] = result.lengths, result.true_lengths
                    done[rows, 2:] = result.order if result.order is not None else np.arange(2)
                for _ in range(job.count):
                    count += 1
                    if on_sample is not None:
                        on_sample(count)
                bar.update(task, completed=count)
                if time.monotonic() - last_flush > FLUSH_SECONDS:
                    _checkpoint(partial, data, done)
                    last_flush = time.monotonic()
    finally:
        _checkpoint(partial, data, done)
    return len(todo), failures


# --- planning: what to read, without reading skeletons --------------------------------------------


def _plan_ntu(dataset: str, raw_dirs: list[Path]) -> _Plan:
    spec = get_spec(dataset)
    missing_file = _find_file(raw_dirs, MISSING_LISTS[dataset])
    if missing_file is None:
        wanted = MISSING_LISTS[dataset][0]
        raise DataError(
            ", ".join(map(str, raw_dirs)),
            f"expected the official list {wanted} in a --raw folder (from github.com/shahroudy/NTURGB-D, "
            "Matlab/); the official preprocessing drops those samples",
        )
    missing = read_missing_list(missing_file)
    every = ntu_sample_names(raw_dirs, dataset)
    paths = [p for p in every if parse_ntu_name(p).name not in missing]
    if not paths:
        raise DataError(missing_file, f"every {dataset} sample found is on this missing list; nothing to prepare")
    ids = [parse_ntu_name(p) for p in paths]
    names = [i.name for i in ids]
    metadata = {
        key: np.array([getattr(i, key) for i in ids], dtype=np.int64)
        for key in ("setup", "camera", "performer", "replication", "action")
    }
    skipped = len(every) - len(paths)
    return _Plan(
        dataset=dataset,
        num_classes=spec.num_classes,
        names=names,
        labels=np.array([i.label for i in ids], dtype=np.int64),
        metadata=metadata,
        splits=ntu_split_masks(ids, dataset),
        jobs=[_Job("ntu", str(p), row) for row, p in enumerate(paths)],
        fingerprint_items=[f"{p.name}:{p.stat().st_size}" for p in paths],
        skipped={"missing_skeletons": {"count": skipped, "list": missing_file.name,
                                       "why": "on the official list of samples with missing skeletons"}},
    )


def _plan_pku(raw_dirs: list[Path]) -> _Plan:
    split_paths = {}
    for split, file in PKU_SPLIT_FILES.items():
        found = _find_file(raw_dirs, (file,))
        if found is None:
            raise DataError(", ".join(map(str, raw_dirs)), f"expected the official split file {file} in a --raw folder")
        split_paths[split] = found
    train_sets = {split: _train_names(path) for split, path in split_paths.items()}
    skeleton_dir = _find_subdir(raw_dirs, "skeleton")
    label_dir = _find_subdir(raw_dirs, "label")
    videos = sorted(p for p in skeleton_dir.iterdir() if p.is_file() and p.suffix == ".txt")
    if not videos:
        raise DataError(skeleton_dir, "expected PKU-MMD skeleton files (*.txt), found none")
    jobs, names, items = [], [], []
    labels, meta_rows, split_rows = [], [], []
    for video_index, video in enumerate(videos):
        label_file = label_dir / video.name
        if not label_file.is_file():
            raise DataError(video, f"expected its label file {label_file}, found none")
        segments = read_pku_labels(label_file, PKU_NUM_CLASSES)
        if not segments:
            continue
        jobs.append(_Job("pku", str(video), len(names), tuple(segments)))
        view = PKU_VIEWS.get(video.stem.rsplit("-", 1)[-1], 0)
        for index, seg in enumerate(segments):
            names.append(f"{video.name}_{index}")  # CMD's sample names
            labels.append(seg.label - 1)
            meta_rows.append((video_index, index, seg.start, seg.end, view))
            split_rows.append([video.stem in train_sets[split] for split in PKU_SPLIT_FILES])
        spans = ",".join(f"{s.label}/{s.start}/{s.end}" for s in segments)
        items.append(f"{video.name}:{video.stat().st_size}:{spans}")
    if not names:
        raise DataError(label_dir, "expected labelled actions in the label files, found none")
    meta_array = np.array(meta_rows, dtype=np.int64)
    split_array = np.array(split_rows, dtype=bool)
    return _Plan(
        dataset="pku2",
        num_classes=PKU_NUM_CLASSES,
        names=names,
        labels=np.array(labels, dtype=np.int64),
        metadata={key: meta_array[:, k] for k, key in enumerate(("video", "segment", "start", "end", "view"))},
        splits={split: split_array[:, k] for k, split in enumerate(PKU_SPLIT_FILES)},
        jobs=jobs,
        fingerprint_items=items,
    )


def _find_file(raw_dirs: list[Path], names: tuple[str, ...]) -> Path | None:
    """The first of `names` (in order of preference) directly inside one of the raw folders."""
    for name in names:
        for folder in raw_dirs:
            if (folder / name).is_file():
                return folder / name
    return None


def _find_subdir(raw_dirs: list[Path], word: str) -> Path:
    """The one sub-folder of the raw folders whose name contains `word` (CMD: skeleton/, label/)."""
    found = [d for folder in raw_dirs for d in sorted(folder.iterdir()) if d.is_dir() and word in d.name.lower()]
    if len(found) != 1:
        where = ", ".join(map(str, raw_dirs))
        what = "none" if not found else ", ".join(d.name for d in found)
        raise DataError(where, f"expected exactly one '{word}' folder (PKU-MMD layout: skeleton/, label/ and the split files), found {what}")
    return found[0]


def _train_names(path: Path) -> set[str]:
    """Training video names of a split file; every name is refused if it could act as a path
    (`..`, `/`, `\\`, NUL, a drive), although names are only ever compared, never joined to paths."""
    train, test = read_pku_split(path)
    for name in train + test:
        if "/" in name or "\\" in name or ".." in name or "\0" in name or (len(name) > 1 and name[1] == ":"):
            raise DataError(path, f"expected plain video names like A01N01-L, found '{name[:60]}' (path characters refused)")
    return set(train)


def _fingerprint(plan: _Plan, normalize: bool, max_frames: int) -> str:
    text = "\n".join([plan.dataset, f"normalize={normalize}", f"max_frames={max_frames}", "format=raw-bodies", *plan.fingerprint_items])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _command(name: str, raw_dirs: list[Path], out: Path, normalize: bool, max_frames: int) -> str:
    parts = ["halp-bench", "prepare", name]
    for folder in raw_dirs:
        parts += ["--raw", str(folder.resolve())]
    parts += ["--out", str(out.resolve())]
    if normalize:
        parts.append("--normalize")
    if max_frames != 300:
        parts += ["--max-frames", str(max_frames)]
    return shlex.join(parts)


# --- the output directory: claim it, resume in it, finalise it ------------------------------------


def _claim(out: Path, fingerprint: str, force: bool) -> dict[str, Any] | None:
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
                raise ConfigError(
                    f"--out {out}: holds a prepared (or unfinished) dataset made from other raw files or "
                    "options; pass --force to replace it"
                )
            raise ConfigError(
                f"--out {out}: is not empty and is not a halp-bench prepared directory; choose a new or "
                "empty directory, or pass --force to write into it"
            )
    _remove_ours(out, meta)
    return None


def _remove_ours(out: Path, meta: dict[str, Any] | None) -> None:
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


def _open_partial(out: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, Path]:
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


def _checkpoint(partial: Path, data: np.ndarray, done: np.ndarray) -> None:
    """Array rows reach the disk before the progress that says they are done."""
    data.flush()
    save_array(partial / PROGRESS_FILE, done)


def _finalise(
    out: Path,
    plan: _Plan,
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
    published = PUBLISHED_SPLIT_COUNTS.get(plan.dataset, {})
    meta = {
        "dataset": plan.dataset,
        "num_samples": int(len(keep)),
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
    write_meta(out, meta)
    _remove_ours(out, None)
    return meta


def _summary_from_meta(out: Path, meta: dict[str, Any], seconds: float, read: int = 0, resumed: int | None = None) -> PrepareSummary:
    missing = meta.get("skipped", {}).get("missing_skeletons", {}).get("count", 0)
    splits = meta["splits"]
    return PrepareSummary(
        dataset=meta["dataset"],
        out=out,
        samples=meta["num_samples"],
        read=read,
        skipped_missing=missing,
        failed=[(f["file"], f["reason"]) for f in meta["failed"]],
        truncated=meta["truncated"],
        splits={name: (s["train"], s["test"]) for name, s in splits.items()},
        published={name: tuple(s["published"]) for name, s in splits.items() if s["published"]},
        normalized=meta["normalized"],
        resumed=meta["num_samples"] if resumed is None else resumed,
        seconds=seconds,
        already_complete=resumed is None,
    )


# --- the work: reading one raw file, in a worker process ------------------------------------------


def _results(jobs: list[_Job], workers: int, max_frames: int, normalize: bool) -> Iterator[_JobResult]:
    """Results of `jobs` as they finish: inline for one worker, else on a process pool with a
    bounded number of jobs in flight (so memory stays flat however many files there are)."""
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield _run_job(job, max_frames, normalize)
        return
    # spawn, not fork: the parent may hold torch threads; workers import only numpy and the readers
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"))
    try:
        queue = iter(jobs)
        pending: set[Future[_JobResult]] = set()
        while True:
            while len(pending) < 4 * workers and (job := next(queue, None)) is not None:
                pending.add(pool.submit(_run_job, job, max_frames, normalize))
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_job(job: _Job, max_frames: int, normalize: bool) -> _JobResult:
    """Read one raw file into padded (count, 3, max_frames, 25, 2) samples; a bad file is a
    result with an error (reported and left out), not a crash of the whole prepare."""
    try:
        if job.kind == "pku":
            samples = pku_segments(read_pku_skeleton(job.path), list(job.segments), max_frames, job.path)
            x, lengths, true_lengths = samples.data, samples.lengths, samples.true_lengths
        else:
            skeleton = read_skeleton(job.path, max_bodies=RAW_NTU_BODIES)
            if not skeleton.present.any():
                raise DataError(job.path, "expected at least one body, found none in any frame (not on the missing list)")
            order = energy_order(skeleton.xyz, NUM_BODIES)
            bodies = select_bodies(skeleton.xyz, NUM_BODIES) if normalize else skeleton.xyz.transpose(3, 1, 2, 0)
            true_lengths = np.array([bodies.shape[1]], dtype=np.int64)
            lengths = np.minimum(true_lengths, max_frames)
            x = np.zeros((1, 3, max_frames, NUM_JOINTS, bodies.shape[-1]), dtype=np.float32)
            x[0, :, : lengths[0]] = bodies[:, : lengths[0]]
            if normalize:
                x = pre_normalize(x, lengths=lengths)
            return _JobResult(job.first, x, lengths, true_lengths, order=order[None])
        if normalize:
            x = pre_normalize(x, lengths=lengths)
        return _JobResult(job.first, x, lengths, true_lengths)
    except DataError as exc:
        return _JobResult(job.first, None, None, None, str(exc))
