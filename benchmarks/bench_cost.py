"""Cost of each method relative to the MoCo baseline (the paper's Table 4 layout), in one run.

    python benchmarks/bench_cost.py                   # cpu preset encoder, a few epochs
    python benchmarks/bench_cost.py --paper-size      # also the paper's 3x1024 BiGRU, a short run
    python benchmarks/bench_cost.py --encoder stgcn --methods moco,halp,skeletonclr,crossclr,aimclr
                                                      # the field's methods against moco on one encoder
    python benchmarks/bench_cost.py --encoder transformer --methods moco,mamp --threads 1
                                                      # MAMP against MoCo, both on the transformer

For each size, every method pretrains on the same synthetic samples with the same settings; we
report the time per epoch (training only) and the peak memory the run added, absolute and relative
to `moco`. Paper: HaLP 1.13x time / 1x memory, CMD 3.0x / 1.94x, HaLP+CMD 3.32x / 1.94x.
HaLP is measured with its term active from the first step (start_epoch 0), CrosSCLR and AimCLR
with their mining on (cross_epoch, mining_epoch 0): the cost of each whole method.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from bench_throughput import PAPER_SIZE  # the paper's encoder and views, as the throughput benchmark sizes them

from halp_bench.config import make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.engine.device import resolve_device, seed_everything
from halp_bench.engine.pretrain import pretrain
from halp_bench.methods.base import create_method
from halp_bench.registry import load_plugins

METHODS = ("moco", "halp", "cmd", "halp_cmd")
ACTIVE = ["method.start_epoch=0", "method.cross_epoch=0", "method.mining_epoch=0"]  # every method's extra term on from step 1
PAPER = {"moco": (1.0, 1.0), "halp": (1.13, 1.0), "cmd": (3.0, 1.94), "halp_cmd": (3.32, 1.94)}


def _overrides(size: str, samples: int, epochs: int, encoder: str | None) -> list[str]:
    # no warm-up (mamp's cpu preset has 5 epochs of it): a run this short measures cost, not accuracy
    overrides = [f"pretrain.epochs={epochs}", "pretrain.milestones=1000", "pretrain.warmup_epochs=0", *ACTIVE, f"data.synthetic_samples={samples}"]
    overrides += [f"encoder.name={encoder}"] if encoder else []
    if size == "paper":
        overrides += PAPER_SIZE
    return overrides


def measure_one(
    name: str, size: str, samples: int, epochs: int, device_name: str, threads: int, encoder: str | None, methods: tuple[str, ...]
) -> tuple[float, float]:
    """(median seconds per epoch after the first, peak MB added) of one method, in a fresh process
    so that no other method's allocations are counted."""
    if threads:
        torch.set_num_threads(threads)
    load_plugins()
    device = resolve_device(device_name)
    configs = make_configs("cpu", _overrides(size, samples, epochs, encoder), sorted({*methods, "halp"}), ignore_others=True)
    cfg = configs[name]
    data = load_dataset(cfg.data)
    train, _ = data.split()
    # HaLP needs prototype_queue real keys before its term switches on: epoch 1 fills that, untimed;
    # every method trains on the same samples
    warm_up = -(-configs["halp"].method.prototype_queue // cfg.pretrain.batch_size)
    train = train.subset(np.arange(min(len(train), cfg.pretrain.batch_size * max(warm_up, 2))))
    seed_everything(0)
    method = create_method(name, cfg, data.spec(cfg.data.frames))
    with tempfile.TemporaryDirectory() as tmp:
        result = pretrain(name, method, train, cfg, device, Path(tmp), show_progress=False, say=lambda _: None)
    times = result.epoch_times[1:] or result.epoch_times
    return float(np.median(times)), result.increase_mb


def measure(
    size: str, samples: int, epochs: int, device: str, threads: int, encoder: str | None = None, methods: tuple[str, ...] = METHODS
) -> dict[str, tuple[float, float]]:
    """{method: (seconds per epoch, peak MB added)} for one encoder size, one process per method."""
    context = multiprocessing.get_context("spawn")
    out = {}
    for name in methods:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            out[name] = pool.submit(measure_one, name, size, samples, epochs, device, threads, encoder, methods).result()
    return out


def report(size: str, rows: dict[str, tuple[float, float]]) -> None:
    base_t, base_m = rows["moco"]
    print(f"\n## encoder size: {size}")
    print("| method | time/epoch (s) | x moco | paper | peak +MB | x moco | paper |")
    print("|---|---|---|---|---|---|---|")
    for name, (t, m) in rows.items():
        pt, pm = (f"{v:.2f}x" for v in PAPER[name]) if name in PAPER else ("–", "–")
        print(f"| {name} | {t:.3f} | {t / base_t:.2f}x | {pt} | {m:.0f} | {m / max(base_m, 1e-9):.2f}x | {pm} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per method at the cpu size")
    parser.add_argument("--paper-size", action="store_true", help="also measure the paper's 3x1024 BiGRU (slow on CPU)")
    parser.add_argument("--paper-epochs", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, moco first (the ratios' base)")
    parser.add_argument("--encoder", default=None, help="train every method on this encoder at its cpu preset size (e.g. stgcn)")
    args = parser.parse_args()
    methods = tuple(args.methods.split(","))
    if methods[0] != "moco":
        parser.error("--methods must start with moco, the base of the ratios")
    if args.encoder and args.paper_size:
        parser.error("--paper-size measures the paper's BiGRU; give --encoder without it")
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads, one process per method")
    size = f"{args.encoder} (cpu preset size)" if args.encoder else "cpu preset (1x128 BiGRU)"
    report(f"{size}, 16 frames, batch 64", measure("cpu", 1800, args.epochs, args.device, args.threads, args.encoder, methods))
    if args.paper_size:
        report("paper (3x1024 BiGRU, 64 frames, batch 64)", measure("paper", 1800, args.paper_epochs, args.device, args.threads))


if __name__ == "__main__":
    main()
