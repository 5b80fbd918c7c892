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
import shlex
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.common.progress import progress_bar
from halp_bench.datasets.formats.prepared_dir import JOB_FILE, PARTIAL_DIR, PREPARED_DATASETS, read_job
from halp_bench.datasets.raw.normalize import pre_normalize
from halp_bench.datasets.raw.ntu import energy_order, read_skeleton, select_bodies
from halp_bench.datasets.raw.output import checkpoint_rows, claim_output, finalise, open_partial
from halp_bench.datasets.raw.pku import pku_segments, read_pku_skeleton
from halp_bench.datasets.raw.plan import Job, Plan, plan_ntu, plan_pku
from halp_bench.errors import ConfigError, DataError, UnknownNameError

NUM_JOINTS, NUM_BODIES = 25, 2
RAW_NTU_BODIES = 4  # the bodies every pipeline may need (the 2s-AGCN reader reads up to 4), kept in file order
FLUSH_SECONDS = 5.0  # how much work an interruption can cost at most


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


@dataclass
class _JobResult:
    first: int
    data: np.ndarray | None  # (count, 3, max_frames, 25, bodies) float32
    lengths: np.ndarray | None  # stored lengths, <= max_frames
    true_lengths: np.ndarray | None
    error: str | None = None
    order: np.ndarray | None = None  # (count, 2) the body slots the agcn choice keeps (most active first)


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
    plan = plan_ntu(name, raw_dirs) if name.startswith("ntu") else plan_pku(raw_dirs)
    fingerprint = _fingerprint(plan, normalize, max_frames)
    meta = claim_output(out, fingerprint, force)
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
    data, done, source = open_partial(out, shape)
    resumed = int((done[:, 0] >= 0).sum())

    read, failures = _fill(plan, data, done, partial, workers, max_frames, normalize, progress, on_sample)
    failed = [failures[j.first] for j in plan.jobs if j.first in failures]
    meta = finalise(out, plan, data, done, source, failed, normalize, max_frames, fingerprint, raw_dirs)
    del data
    return _summary_from_meta(out, meta, time.perf_counter() - started, read=read, resumed=resumed)


def _fill(
    plan: Plan,
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
                    checkpoint_rows(partial, data, done)
                    last_flush = time.monotonic()
    finally:
        checkpoint_rows(partial, data, done)
    return len(todo), failures


# --- planning: what to read, without reading skeletons --------------------------------------------


def _fingerprint(plan: Plan, normalize: bool, max_frames: int) -> str:
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


def _results(jobs: list[Job], workers: int, max_frames: int, normalize: bool) -> Iterator[_JobResult]:
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


def _run_job(job: Job, max_frames: int, normalize: bool) -> _JobResult:
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
