"""What the data check and the fingerprint cost a run, first time and cached, at NTU-60's size.

    python benchmarks/bench_datacheck.py                        # 40,000 x 3 x 300 x 25 x 2 float32: 18 GB on disk
    python benchmarks/bench_datacheck.py --samples 4000         # a tenth, extrapolated linearly to 40,000

Writes a prepared dataset (the directory `halp-bench prepare` makes) whose memory-mapped array has
NTU-60's shape, filled with skeleton-like values (zero after random lengths, a second body in a
fifth of the samples), then evicts it from the page cache (posix_fadvise DONTNEED), so the first
scan reads from disk as it would after a fresh prepare or a reboot. It then times what a run does
with a dataset split before training: load it (memory-mapped), scan it (datasets/quality/scan.py), run the
checks of the dataset and the split and fingerprint the split, with an empty scan cache (first
time) and again from the cache (every later run), each in a fresh container as a new run would
load it; then the scan alone once more, from the page cache (its compute speed). Both are put beside one
pretraining epoch at the paper's size, from the step times
measured on this project's CPU (docs/performance.md; `--step-seconds` to give yours) and the
paper's 626 steps per epoch. When the disk cannot hold the array the benchmark says so, measures
fewer samples and extrapolates linearly (the scan's work is linear in the samples).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from halp_bench.config import DataConfig
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.formats.prepared_dir import DATA_FILE, save_array, write_meta
from halp_bench.datasets.quality import scan as scan_module
from halp_bench.datasets.quality.checks import check_split
from halp_bench.datasets.quality.fingerprint import split_fingerprint
from halp_bench.registry import load_plugins

NTU60_SAMPLES, FRAMES, JOINTS, BODIES, CLASSES = 40_000, 300, 25, 2, 60
STEPS_PER_EPOCH = 626  # NTU-60 xsub at the paper's batch of 64
MEASURED_STEP_S = (5.2, 10.7)  # paper-size step on this project's CPU: bf16 + compile, eager fp32 (docs/performance.md)
FILL_CHUNK = 500


def write_dataset(path: Path, samples: int, seed: int = 0) -> None:
    """A prepared directory with an NTU-shaped memory-mapped array, written chunk by chunk."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    lengths = rng.integers(32, FRAMES + 1, size=samples)
    data = np.lib.format.open_memmap(path / DATA_FILE, mode="w+", dtype=np.float32, shape=(samples, 3, FRAMES, JOINTS, BODIES))
    frames = np.arange(FRAMES)
    for start in range(0, samples, FILL_CHUNK):
        stop = min(start + FILL_CHUNK, samples)
        chunk = rng.standard_normal(size=(stop - start, 3, FRAMES, JOINTS, BODIES), dtype=np.float32)
        chunk *= (frames[None, :] < lengths[start:stop, None])[:, None, :, None, None]
        chunk[rng.random(stop - start) > 0.2, ..., 1] = 0  # most samples show one person
        data[start:stop] = chunk
    data.flush()
    del data
    labels = np.arange(samples) % CLASSES
    save_array(path / "lengths.npy", lengths.astype(np.int64))
    save_array(path / "labels.npy", labels.astype(np.int64))
    save_array(path / "names.npy", np.array([f"sample{i:06d}" for i in range(samples)]))
    save_array(path / "split_xsub.npy", rng.random(samples) < 40_091 / 56_578)
    write_meta(
        path,
        {
            "dataset": "ntu-shaped",
            "num_samples": samples,
            "num_classes": CLASSES,
            "layout": "ntu25",
            "default_split": "xsub",
            "splits": {"xsub": {}},
            "metadata": [],
            "fingerprint": "benchmark",
        },
    )


def evict(file: Path) -> None:
    """Drop `file` from the page cache, so the next read comes from the disk."""
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def before_training(path: Path) -> tuple[float, str]:
    """Seconds for what a run does with the split before training (fresh container), and how
    the scan was obtained."""
    start = time.perf_counter()
    data = load_dataset(DataConfig(dataset=str(path)))
    check_split(data, "xsub")
    split_fingerprint(data, "xsub")
    return time.perf_counter() - start, data.scan().origin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=NTU60_SAMPLES, help="samples to write (default: NTU-60's 40,000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the array (default: the system's temporary directory)")
    parser.add_argument("--threads", type=int, default=None, help="scan threads (default: torch's, i.e. the cores)")
    parser.add_argument("--repeats", type=int, default=5, help="cached loads timed (median shown)")
    parser.add_argument(
        "--step-seconds",
        type=float,
        nargs="*",
        default=list(MEASURED_STEP_S),
        help="paper-size pretraining step times to compare with (default: this project's CPU measurements)",
    )
    args = parser.parse_args()
    load_plugins()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench-datacheck-", dir=args.dir))
    per_sample = 3 * FRAMES * JOINTS * BODIES * 4
    free = shutil.disk_usage(root).free
    samples = args.samples
    if samples * per_sample > free - (2 << 30):  # keep 2 GiB for everyone else
        samples = max(1000, int((free - (2 << 30)) // per_sample) // 1000 * 1000)
        print(
            f"{root}: {free / 2**30:.1f} GiB free cannot hold {args.samples:,} samples ({args.samples * per_sample / 2**30:.1f} GiB); "
            f"measuring {samples:,} and extrapolating linearly"
        )
    scale = NTU60_SAMPLES / samples
    os.environ[scan_module.ENV_CACHE] = str(root / "cache")
    try:
        dataset = root / "ntu-shaped"
        start = time.perf_counter()
        write_dataset(dataset, samples)
        print(
            f"wrote {samples:,} x 3 x {FRAMES} x {JOINTS} x {BODIES} float32 ({samples * per_sample / 1e9:.1f} GB) in "
            f"{time.perf_counter() - start:.0f}s; scan threads: {torch.get_num_threads()}"
        )
        evict(dataset / DATA_FILE)
        first, origin = before_training(dataset)
        assert origin == "computed", origin
        cached = []
        for _ in range(args.repeats):
            seconds, origin = before_training(dataset)
            assert origin == "cached", origin
            cached.append(seconds)
        cached_s = statistics.median(cached)
        data = load_dataset(DataConfig(dataset=str(dataset)))
        start = time.perf_counter()
        data.scan(refresh=True)  # the array is in the page cache now (if it fits): the scan's own speed
        rescan = time.perf_counter() - start
        print(
            f"load + check + fingerprint of {samples:,} samples: first time {first:.2f}s "
            f"({samples * per_sample / first / 1e9:.2f} GB/s, read from disk), cached {cached_s * 1e3:.1f} ms "
            f"(median of {args.repeats}; {min(cached) * 1e3:.1f}-{max(cached) * 1e3:.1f} ms)"
        )
        print(f"the scan alone, again, from the page cache: {rescan:.2f}s ({samples * per_sample / rescan / 1e9:.2f} GB/s)")
        if scale != 1:
            print(f"extrapolated to {NTU60_SAMPLES:,} samples (x{scale:.1f}): first time {first * scale:.1f}s, cached {cached_s * scale * 1e3:.1f} ms")
        for step in args.step_seconds:
            epoch = step * STEPS_PER_EPOCH
            print(
                f"one paper-size pretraining epoch at {step:g} s/step x {STEPS_PER_EPOCH} steps = {epoch:,.0f}s: "
                f"first time adds {100 * first * scale / epoch:.2f} %, cached {100 * cached_s * scale / epoch:.4f} %"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
