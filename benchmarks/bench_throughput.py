"""Training-step throughput of every method, per precision, against this machine's matmul peak.

    python benchmarks/bench_throughput.py                       # cpu preset encoder (1x128 BiGRU)
    python benchmarks/bench_throughput.py --paper --methods moco,halp --steps 2   # + the paper's 3x1024 (slow on CPU)
    python benchmarks/bench_throughput.py --device cuda --paper
    python benchmarks/bench_throughput.py --compile --methods moco,halp   # + each cell under --compile

One step = what the engine does per batch: augmentation of both views, the method's forward and
losses under autocast, backward and SGD step. Printed per (size, method, precision): samples/s,
step time relative to MoCo at the same size and precision (the goal: HaLP <= 1.03x), speed relative
to fp32, model FLOPs per step and the achieved fraction of the fp32 matmul peak measured in the
same run (a large square matmul). With --compile, every cell is also measured with the encoders
compiled (engine/compile.py; its first step, which compiles, is the untimed warm-up). FLOPs are
counted analytically (matmuls of the GRU gates and the heads, backward = 2x forward, key encoder
forward only, queue similarities); the elementwise work and the hallucination are not counted, so
the fraction is that of useful model arithmetic. With --paper, the full NTU-60 recipe's time at
the fastest measured step of each method is printed too.
"""

from __future__ import annotations

import argparse
import time

import torch

from halp_bench.common.optim import make_optimizer
from halp_bench.common.precision import Precision
from halp_bench.config import RunConfig, make_configs
from halp_bench.datasets.raw.ntu import PUBLISHED_SPLIT_COUNTS
from halp_bench.engine.compile import compiled_encoders
from halp_bench.engine.device import device_name, resolve_device
from halp_bench.methods.base import Batch, create_method
from halp_bench.registry import METHODS, load_plugins
from halp_bench.skeleton import NTU25, DataSpec

PAPER_SIZE = [
    "encoder.hidden_size=1024",
    "encoder.num_layers=3",
    "method.proj_hidden=2048",
    "method.proj_dim=128",
    "data.frames=64",
    "augment.min_crop_frames=64",
]
IN_CHANNELS = 3 * 25 * 2  # NTU: C x V x M
NTU60_XSUB_TRAIN = PUBLISHED_SPLIT_COUNTS["ntu60"]["xsub"][0]


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """Achieved fp32 FLOP/s of an n x n matmul (the machine's practical peak for this arithmetic)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


def step_flops(cfg: RunConfig, streams: int, batch: int) -> float:
    """Matmul FLOPs of one training step (see the module docstring)."""
    e, m, t = cfg.encoder, cfg.method, cfg.data.frames
    gru = sum(
        2 * 3 * ((IN_CHANNELS if layer == 0 else 2 * e.hidden_size) + e.hidden_size) * e.hidden_size * 2 * t for layer in range(e.num_layers)
    )  # per sample: 3 gates, 2 directions, t frames
    head = 2 * (2 * e.hidden_size * m.proj_hidden + m.proj_hidden * m.proj_dim)
    queue = 2 * m.queue_size * m.proj_dim
    return streams * batch * (3 * (gru + head + queue) + gru + head)  # query fwd + bwd, key fwd


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, cfg: RunConfig, precision: str, device: torch.device, steps: int, compile_encoders: bool = False) -> tuple[float, float]:
    """Seconds per training step (after one warm-up step), and the warm-up step's seconds (compilation included)."""
    torch.manual_seed(0)
    method = create_method(name, cfg, DataSpec(channels=3, frames=cfg.data.frames, joints=25, persons=2, layout=NTU25)).to(device)
    optimizer = make_optimizer(method.param_groups(), cfg.pretrain)
    amp = Precision(precision, device)
    b, frames = cfg.pretrain.batch_size, cfg.data.frames
    x = torch.randn(b, 3, frames * 2, 25, 2, device=device)
    lengths = torch.full((b,), frames * 2, device=device)
    gen = torch.Generator(device=device).manual_seed(1)
    method.train()
    elapsed = first = 0.0
    with compiled_encoders(method, device, compile_encoders):
        for i in range(steps + 1):
            _sync(device)
            start = time.perf_counter()
            batch = Batch(method.make_views(x, lengths, gen), epoch=0, iteration=i, step=i, total_steps=steps + 1)
            with amp.autocast():
                method.step_momentum_targets(batch)
                losses = method.training_step(batch)
            optimizer.zero_grad(set_to_none=True)
            amp.backward_and_step(losses["loss"], optimizer)
            _sync(device)
            if i:
                elapsed += time.perf_counter() - start
            else:
                first = time.perf_counter() - start
    return elapsed / steps, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", default="moco,halp,cmd,halp_cmd")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per cell (cpu size); paper size: max(1, steps // 5)")
    parser.add_argument("--paper", action="store_true", help="also the paper's 3x1024 BiGRU, 64 frames, batch 64, queue 16384")
    parser.add_argument("--compile", action="store_true", help="also measure each cell with the encoders compiled")
    args = parser.parse_args()
    load_plugins()
    device = resolve_device(args.device)
    precisions = ["32", "bf16"] + (["16-mixed"] if device.type == "cuda" else [])
    peak = matmul_peak(device)
    print(f"device: {device_name(device)}; measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    sizes = {"cpu": []} | ({"paper": PAPER_SIZE} if args.paper else {})
    header = (
        f"{'size':6} {'method':9} {'precision':13} {'samples/s':>10} {'step s':>8} {'vs moco':>8} {'vs fp32':>8} "
        f"{'vs eager':>9} {'GFLOP/step':>11} {'of peak':>8}"
    )
    print(header)
    variants = [(p, c) for p in precisions for c in ((False, True) if args.compile else (False,))]
    for size, overrides in sizes.items():
        # the paper preset's optimiser and queue; the `cpu` preset's otherwise (start_epoch 0: HaLP's term is on)
        names = args.methods.split(",")
        configs = make_configs("paper" if size == "paper" else "cpu", [*overrides, "method.start_epoch=0", "device=cpu"], ["moco", *names])
        steps = args.steps if size == "cpu" else max(1, args.steps // 5)
        measure("moco", configs["moco"], "32", device, steps)  # unreported: the first cell measured would otherwise pay the process's warm-up
        times: dict[tuple[str, str, bool], float] = {}
        for name in names:
            cfg = configs[name]
            streams = len(getattr(METHODS.get(name), "streams", ("joint",)))
            flops = step_flops(cfg, streams, cfg.pretrain.batch_size)
            for precision, compiled in variants:
                seconds, first = measure(name, cfg, precision, device, steps, compiled)
                times[name, precision, compiled] = seconds
                base = times.get(("moco", precision, compiled))
                label = precision + ("+compile" if compiled else "")
                print(
                    f"{size:6} {name:9} {label:13} {cfg.pretrain.batch_size / seconds:10.1f} {seconds:8.4f} "
                    f"{seconds / base if base else float('nan'):8.2f}x {times[name, '32', compiled] / seconds:7.2f}x "
                    f"{times[name, precision, False] / seconds:8.2f}x {flops / 1e9:11.2f} {flops / seconds / peak:8.1%}"
                    + (f"  (first step, compiling: {first:.0f} s)" if compiled else ""),
                    flush=True,
                )
        if size == "paper":  # the paper preset's epochs and batch; the last partial batch is dropped
            recipe_steps = NTU60_XSUB_TRAIN // cfg.pretrain.batch_size * cfg.pretrain.epochs
            for name in args.methods.split(","):
                (precision, compiled), seconds = min(((v, times[(name, *v)]) for v in variants), key=lambda item: item[1])
                print(
                    f"NTU-60 paper recipe, {name}: {recipe_steps:,} steps ({NTU60_XSUB_TRAIN:,} xsub training sequences, "
                    f"batch {cfg.pretrain.batch_size}, {cfg.pretrain.epochs} epochs) x {seconds:.3f} s = "
                    f"{recipe_steps * seconds / 3600:.1f} h on this device "
                    f"({precision}{'+compile' if compiled else ''}; training steps only)"
                )


if __name__ == "__main__":
    main()
