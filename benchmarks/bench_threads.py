"""More torch threads than cores: the step time of a cpu-preset-sized BiGRU at `cores` threads and
at several times that, in one process, alternating so that other load on the machine hits both.

    python benchmarks/bench_threads.py                    # cores vs 4x, 16x and 64x cores
    python benchmarks/bench_threads.py --factors 8 --steps 20 --repeats 3

One step is a forward and backward pass of a 1-layer, 128-wide bidirectional GRU over a batch of
64 sequences of 16 frames of 150 features (the cpu preset's encoder and views on NTU-25 data, one
body). The median step time of each thread count is reported beside the `cores` one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def step_seconds(model: torch.nn.Module, x: torch.Tensor, threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        out, _ = model(x)
        out.sum().backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="4,16,64", help="thread counts as multiples of the cores")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    torch.manual_seed(0)
    model = torch.nn.GRU(150, 128, num_layers=1, batch_first=True, bidirectional=True)
    x = torch.randn(64, 16, 150)
    counts = [cores] + [cores * int(f) for f in args.factors.split(",")]
    measured: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(args.repeats):
        for n in counts:
            measured[n].append(step_seconds(model, x, n, args.steps))
    base = statistics.median(measured[cores])
    print(f"{cores} cores; median step time over {args.repeats} x {args.steps} steps")
    for n in counts:
        value = statistics.median(measured[n])
        print(f"threads {n:4d}: {value * 1000:8.1f} ms/step  ({value / base:5.1f}x the time at {cores})")


if __name__ == "__main__":
    main()
