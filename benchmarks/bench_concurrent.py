"""Two runs on one machine: each run's epoch time side by side over its time alone, in one script.

    python benchmarks/bench_concurrent.py                      # every variant, 6 epochs per run
    python benchmarks/bench_concurrent.py --variants default,torch --epochs 8 --repeats 2
    python benchmarks/bench_concurrent.py --with-tests         # also the test suite next to a run

Every run is a real `halp-bench run --methods moco --protocols knn` of the default `cpu` preset on
the built-in synthetic data, in its own process and output directory. An epoch's time is read from
the run's log.csv (training only); the first epoch (warm-up) is left out and the median of the rest
is reported. Variants (the environment each run starts with):

- `default`: what halp-bench does by itself (common/cpu_share.py: a fair share of the cores);
- `torch`: torch's own thread count, every core per process (HALP_BENCH_SHARE_CPUS=0; before the fix);
- `threads1`: `--threads 1` for every run (the manual split);
- `passive`: torch's count with OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep at once);
- `spin0`: torch's count with GOMP_SPINCOUNT=0 (libgomp does not spin at all);
- `mkl1`: torch's count with MKL_NUM_THREADS=1 (one thread for MKL's BLAS only).

`--with-tests` runs `pytest tests/test_methods.py` alone and next to a `default` run, and reports
the suite's wall time and the run's epoch time in both cases.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "default": ({}, []),
    "torch": ({"HALP_BENCH_SHARE_CPUS": "0"}, []),
    "threads1": ({}, ["--threads", "1"]),
    "passive": ({"HALP_BENCH_SHARE_CPUS": "0", "OMP_WAIT_POLICY": "PASSIVE"}, []),
    "spin0": ({"HALP_BENCH_SHARE_CPUS": "0", "GOMP_SPINCOUNT": "0"}, []),
    "mkl1": ({"HALP_BENCH_SHARE_CPUS": "0", "MKL_NUM_THREADS": "1"}, []),
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "HALP_BENCH_SHARE_CPUS")


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return {**env, **extra}


def _start_run(out: Path, epochs: int, variant: str) -> subprocess.Popen:
    extra_env, extra_args = VARIANTS[variant]
    command = [
        sys.executable,
        "-m",
        "halp_bench.cli",
        "run",
        "--methods",
        "moco",
        "--protocols",
        "knn",
        "--no-progress",
        "--set",
        f"pretrain.epochs={epochs}",
        "--out",
        str(out),
        *extra_args,
    ]
    return subprocess.Popen(command, env=_environment(extra_env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _epoch_times(out: Path) -> list[float]:
    logs = list(out.glob("runs/*/log.csv"))
    if not logs:
        raise RuntimeError(f"{out}: the run wrote no log.csv")
    with logs[0].open() as handle:
        return [float(row["seconds"]) for row in csv.DictReader(handle)]


def _finish(process: subprocess.Popen, out: Path) -> float:
    """The run's median epoch time after the first epoch."""
    _, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"run in {out} failed:\n{err[-2000:]}")
    times = _epoch_times(out)
    return statistics.median(times[1:] or times)


def side_by_side(count: int, epochs: int, variant: str, scratch: Path) -> list[float]:
    """Start `count` identical runs together; each run's median epoch time."""
    outs = [Path(tempfile.mkdtemp(dir=scratch)) / "out" for _ in range(count)]
    processes = [_start_run(out, epochs, variant) for out in outs]
    return [_finish(p, out) for p, out in zip(processes, outs)]


def tests_next_to_a_run(epochs: int, scratch: Path) -> None:
    """The test suite's wall time and a run's epoch time, each alone and the two together."""
    suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_methods.py"]

    def run_suite() -> float:
        started = time.perf_counter()
        subprocess.run(suite, cwd=ROOT, env=_environment({}), check=True, capture_output=True)
        return time.perf_counter() - started

    suite_alone = run_suite()
    run_alone = side_by_side(1, epochs, "default", scratch)[0]
    out = Path(tempfile.mkdtemp(dir=scratch)) / "out"
    process = _start_run(out, epochs, "default")
    suite_beside = run_suite()
    run_beside = _finish(process, out)
    print(f"\ntest suite (tests/test_methods.py) next to a default run (epochs {epochs}):")
    print(f"  suite wall time  alone {suite_alone:6.1f} s   beside a run {suite_beside:6.1f} s   ratio {suite_beside / suite_alone:.2f}x")
    print(f"  run epoch time   alone {run_alone:6.2f} s   beside the suite {run_beside:6.2f} s   ratio {run_beside / run_alone:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=6, help="pretraining epochs per run (the first is not timed)")
    parser.add_argument("--repeats", type=int, default=1, help="measure each variant this many times")
    parser.add_argument("--with-tests", action="store_true", help="also the test suite next to a run")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    print(
        f"{os.cpu_count()} CPUs; each run: halp-bench run --methods moco --protocols knn (cpu preset, synthetic), "
        f"{args.epochs} epochs; median epoch time after the first"
    )
    print(f"{'variant':<9} {'alone (s)':>10} {'side by side (s)':>18} {'ratio (each / alone)':>22}")
    with tempfile.TemporaryDirectory(prefix="bench-concurrent-") as tmp:
        scratch = Path(tmp)
        for variant in variants:
            for _ in range(args.repeats):
                alone = side_by_side(1, args.epochs, variant, scratch)[0]
                pair = side_by_side(2, args.epochs, variant, scratch)
                ratios = " / ".join(f"{t / alone:.2f}x" for t in pair)
                print(f"{variant:<9} {alone:>10.2f} {' / '.join(f'{t:.2f}' for t in pair):>18} {ratios:>22}", flush=True)
        if args.with_tests:
            tests_next_to_a_run(args.epochs, scratch)


if __name__ == "__main__":
    main()
