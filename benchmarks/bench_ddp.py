"""Data-parallel scaling: the same pretraining (global batch fixed) in 1 and in 2 processes.

    python benchmarks/bench_ddp.py                        # gloo on CPU, moco, cpu preset encoder
    python benchmarks/bench_ddp.py --methods moco,halp --epochs 3 --threads 1
    python benchmarks/bench_ddp.py --device cuda          # NCCL, one GPU per process
    python benchmarks/bench_ddp.py --paper --samples 300  # the paper's 3x1024 BiGRU, 64 frames (compute-bound)

Each process runs the engine's `pretrain` (loader shards, DDP gradients, gathered keys) on the
synthetic data with `--threads` torch threads (CPU), so two processes use twice the cores of one.
Printed: samples/s over the timed epochs (the first epoch is warm-up), and the scaling
efficiency = samples/s with 2 processes / (2 x samples/s with 1). On CPU it also prints the
machine's own ceiling: the summed fp32 matmul rate of 2 independent processes (no communication)
over that of 1, since cores that share a host core or memory bandwidth cap any data-parallel gain.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp
from bench_throughput import PAPER_SIZE

from halp_bench.common import distributed
from halp_bench.config import make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.engine import parallel
from halp_bench.engine.device import device_name, resolve_device, seed_everything
from halp_bench.engine.pretrain import pretrain
from halp_bench.methods.base import create_method
from halp_bench.registry import load_plugins


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: mp.Queue) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    load_plugins()
    names = args.methods.split(",")
    # HaLP's term on from the first step (resolved with halp among the methods, so that the key is known even for moco alone)
    configs = make_configs(
        "cpu",
        [
            f"pretrain.epochs={args.epochs}",
            "pretrain.milestones=1000",
            "method.start_epoch=0",
            f"data.synthetic_samples={args.samples}",
            "checkpoint_every=0",
            *(PAPER_SIZE if args.paper else []),
        ],
        [*names, "halp"],
    )
    cfg = configs[names[0]]
    device = parallel.setup(resolve_device(args.device))
    data = load_dataset(cfg.data)
    train, _ = data.split(data.default_split)
    for name in names:
        cfg = configs[name]
        seed_everything(cfg.seed)
        method = create_method(name, cfg, data.spec(cfg.data.frames))
        with tempfile.TemporaryDirectory() as run_dir:
            result = pretrain(name, method, train, cfg, device, Path(run_dir), show_progress=False, say=lambda _: None)
        timed = result.epoch_times[1:]  # the first epoch warms up
        per_epoch = len(train) // cfg.pretrain.batch_size * cfg.pretrain.batch_size
        if rank == 0:
            out.put((name, per_epoch * len(timed) / sum(timed), device_name(device)))
    distributed.barrier()


def run(world: int, args: argparse.Namespace) -> dict[str, tuple[float, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_worker, args=(world, port, args, queue), nprocs=world, start_method="spawn", join=True)
    return {name: (sps, dev) for name, sps, dev in (queue.get() for _ in args.methods.split(","))}


def _matmul_worker(rank: int, args: argparse.Namespace, start: Any, out: mp.Queue) -> None:
    torch.set_num_threads(args.threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    start.wait()  # every process computes at the same time
    began = time.perf_counter()
    for _ in range(60):
        a @ b
    out.put(2 * 1024**3 * 60 / (time.perf_counter() - began))


def machine_ceiling(world: int, args: argparse.Namespace) -> float:
    """Summed FLOP/s of `world` processes each running the same matmuls at once."""
    ctx = mp.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Barrier(world)
    mp.start_processes(_matmul_worker, args=(args, start, queue), nprocs=world, start_method="spawn", join=True)
    return sum(queue.get() for _ in range(world))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default="moco")
    parser.add_argument("--epochs", type=int, default=3, help="including one warm-up epoch")
    parser.add_argument("--samples", type=int, default=1200, help="synthetic samples (train split ~2/3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (CPU)")
    parser.add_argument("--paper", action="store_true", help="the paper's encoder size instead of the cpu preset's")
    args = parser.parse_args()
    if args.device == "cpu":
        ceiling = machine_ceiling(2, args) / machine_ceiling(1, args)
        print(f"machine ceiling: 2 independent processes compute {ceiling:.2f}x the matmul rate of 1")
    one, two = run(1, args), run(2, args)
    size = "paper encoder (3x1024 BiGRU, 64 frames)" if args.paper else "cpu preset encoder (1x128 BiGRU, 16 frames)"
    print(f"device: {one[next(iter(one))][1]}; {args.threads} thread(s) per process; global batch 64; {size}")
    print(f"{'method':9} {'1 proc samples/s':>17} {'2 procs samples/s':>18} {'speed-up':>9} {'efficiency':>11}")
    for name in one:
        a, b = one[name][0], two[name][0]
        print(f"{name:9} {a:17.1f} {b:18.1f} {b / a:8.2f}x {b / (2 * a):10.1%}")


if __name__ == "__main__":
    main()
