"""Time per epoch of the linear probe and of fine-tuning, with and without a host sync per step.

    python benchmarks/bench_probe.py                      # cpu preset encoder, synthetic data
    python benchmarks/bench_probe.py --device cuda --repeats 5

The classifier protocols train through the shared loop (common/loop.py), which sums the loss on the
device and reads nothing on the host while training. Before it, the probe read `loss.item()` after
every step, which makes the host wait for the device each step. This benchmark runs the same
protocol on the same encoder and data both ways, interleaved, and prints the median epoch time of
each and their ratio: on a CPU the sync costs almost nothing (the host computes the step itself),
on a GPU it stalls the queue of kernels every step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from halp_bench.config import make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.engine.device import resolve_device, seed_everything
from halp_bench.methods.base import create_method
from halp_bench.protocols import classifier
from halp_bench.protocols.base import ProtocolContext
from halp_bench.registry import load_plugins


@contextmanager
def sync_every_step(enabled: bool) -> Iterator[None]:
    """The earlier behaviour: `loss.item()` after every optimiser step."""
    original = classifier._ClassifierHooks.after_step
    if enabled:
        classifier._ClassifierHooks.after_step = lambda self, loop, losses: float(losses["loss"].detach())
    try:
        yield
    finally:
        classifier._ClassifierHooks.after_step = original


def setup(args: argparse.Namespace) -> tuple:
    """The data, a pretrainable encoder and the protocol context, made once for every measurement."""
    load_plugins()
    overrides = [f"data.synthetic_samples={args.samples}", f"linear.epochs={args.epochs}", f"transfer.epochs={args.epochs}"]
    cfg = make_configs("cpu", overrides, ["moco"], ignore_others=True)["moco"]
    data = load_dataset(cfg.data)
    train, test = data.split()
    seed_everything(0)
    encoder = create_method("moco", cfg, data.spec(cfg.data.frames)).encoder_for_eval()
    return cfg, train, test, encoder, ProtocolContext(cfg=cfg, device=resolve_device(args.device))


def epoch_seconds(protocol: str, synced: bool, setup_: tuple, epochs: int) -> float:
    """Seconds per epoch of one protocol run (its final test evaluation spread over the epochs)."""
    cfg, train, test, encoder, ctx = setup_
    optim = cfg.linear if protocol == "linear" else cfg.transfer
    with sync_every_step(synced):
        start = time.perf_counter()
        classifier.train_classifier(encoder, train, test, optim, ctx, finetune=protocol == "finetune", label=protocol)
        total = time.perf_counter() - start
    return total / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=900, help="synthetic samples (train + test)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant, interleaved")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    made = setup(args)
    for protocol in ("linear", "finetune"):  # warm-up: first-call allocations and kernel selection are not timed
        epoch_seconds(protocol, False, made, args.epochs)
    print(f"{'protocol':<10} {'sync per step (s/epoch)':>24} {'loop, no sync (s/epoch)':>24} {'sync÷loop':>10}")
    for protocol in ("linear", "finetune"):
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for synced in (True, False):
                times[synced].append(epoch_seconds(protocol, synced, made, args.epochs))
        before, after = statistics.median(times[True]), statistics.median(times[False])
        print(f"{protocol:<10} {before:>24.3f} {after:>24.3f} {before / after:>9.2f}x")
    print("(median over repeats; each epoch time includes the final test evaluation divided over the epochs)")


if __name__ == "__main__":
    main()
