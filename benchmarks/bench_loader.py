"""The input path against the training step: is the loader ever what the GPU or CPU waits for?

    python benchmarks/bench_loader.py                     # 4000 NTU-shaped sequences, memory-mapped
    python benchmarks/bench_loader.py --samples 20000 --device cuda

Writes an NTU-shaped array (N, 3, 300, 25, 2) float32 to a temporary .npy, opens it memory-mapped
as prepared datasets are, and times the engine's BatchLoader over shuffled global batches of 64:
the first pass reads from disk (or the page cache, if the file is still in it), the second from the
page cache. Printed: ms per batch for each read-ahead depth, and the same batches' augmentation of
both views on the device (crop-resize to 64 frames), which runs in the training step.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from halp_bench.config import make_config
from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.loader import BatchLoader
from halp_bench.engine.device import device_name, resolve_device
from halp_bench.methods.base import create_method
from halp_bench.skeleton import NTU25, DataSpec


def ntu_shaped(path: Path, samples: int) -> SkeletonData:
    rng = np.random.default_rng(0)
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(samples, 3, 300, 25, 2))
    for start in range(0, samples, 500):
        data[start : start + 500] = rng.normal(size=data[start : start + 500].shape).astype(np.float32)
    data.flush()
    del data
    x = np.load(path, mmap_mode="r")
    lengths = rng.integers(40, 301, size=samples)
    labels = rng.integers(0, 60, size=samples)
    return SkeletonData("ntu-shaped", x, lengths, labels, 60, "ntu25", {"all": np.ones(samples, dtype=bool)}, "all")


def time_loader(loader: BatchLoader, device: torch.device, augment=None) -> float:
    """Seconds per batch over one pass (with `augment`, the two views are made too)."""
    start, count = time.perf_counter(), 0
    for x, lengths, _ in loader:
        if augment is not None:
            augment(x, lengths)
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cfg = make_config("paper", ["encoder.hidden_size=8", "encoder.num_layers=1"])  # the views do not depend on the encoder
    method = create_method("moco", cfg, DataSpec(channels=3, frames=cfg.data.frames, joints=25, persons=2, layout=NTU25))
    gen = torch.Generator(device=device).manual_seed(0)

    def both_views(x: torch.Tensor, lengths: torch.Tensor) -> None:
        method.make_views(x, lengths, gen)

    with tempfile.TemporaryDirectory() as tmp:
        data = ntu_shaped(Path(tmp) / "data.npy", args.samples)
        train, _ = data.split("all")
        print(
            f"device: {device_name(device)}; {args.samples} sequences of 3x300x25x2 float32 "
            f"({args.samples * 180 / 1024:.0f} MiB, memory-mapped); global batch 64 (11.0 MiB)"
        )
        print(f"{'read-ahead':>10} {'first pass ms/batch':>20} {'cached pass ms/batch':>21}")
        for prefetch in (1, 2, 4):
            with BatchLoader(train, 64, device, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(prefetch), prefetch=prefetch) as loader:
                first, cached = time_loader(loader, device), time_loader(loader, device)
            print(f"{prefetch:10d} {first * 1e3:20.1f} {cached * 1e3:21.1f}")
        with BatchLoader(train, 64, device, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0)) as loader:
            with_views = time_loader(loader, device, both_views)
        print(f"cached pass + both augmented views (crop-resize to {cfg.data.frames} frames, paper augmentations): {with_views * 1e3:.1f} ms/batch")


if __name__ == "__main__":
    main()
