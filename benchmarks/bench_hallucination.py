"""Benchmark of HaLP's hallucination math: `python benchmarks/bench_hallucination.py [--help]`.

Prints, in one run:
  1. prototype fitting, torch `spherical_kmeans` vs the paper's geomstats `RiemannianKMeans`, on the
     paper's problem size (256 queue keys x 128 dims -> 20 prototypes, clustered data): time and
     geodesic inertia of each, and their ratios (median over seeds; goal: torch >= 20x faster with
     inertia <= geomstats');
  2. the time of one `hallucinate` call at the paper's settings (B=64 keys, G=100 positives, N=20
     prototypes, D=128).
Sections are plain functions called from `main()`; add new ones there (see the marked spot).

Timings are wall-clock minima (and medians) over repeats on the chosen device. On a small shared CPU
use `--threads 1`: torch's intra-op threads stall badly when other processes hold the cores, while
geomstats' numpy code is effectively single-threaded anyway.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from halp_bench.hallucination import clustered_unit_vectors, geodesic_inertia, geomstats_kmeans, hallucinate, spherical_kmeans


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="cpu", help="torch device for the torch code (default: cpu)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per method (0: skip; default 20)")
    parser.add_argument("--step-batch", type=int, default=64, help="training-step batch (default 64)")
    parser.add_argument("--step-frames", type=int, default=16, help="training-step frames (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--seeds", type=int, default=10, help="k-means problems / seeds (default: 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (default: 5)")
    parser.add_argument("--points", type=int, default=256, help="queue keys clustered (default: 256)")
    parser.add_argument("--dim", type=int, default=128, help="feature dimension D (default: 128)")
    parser.add_argument("--clusters", type=int, default=20, help="prototypes N (default: 20)")
    parser.add_argument("--n-init", type=int, default=None, help="torch k-means restarts (default: its own)")
    parser.add_argument("--batch", type=int, default=64, help="keys per hallucinate call B (default: 64)")
    parser.add_argument("--positives", type=int, default=100, help="positives per key G (default: 100)")
    parser.add_argument("--lam", type=float, default=0.8, help="hardness λ (default: 0.8)")
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[list[float], object]:
    """Seconds per call over `repeats` calls after one warm-up call, and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times, result


def clustered_keys(seed: int, n: int, dim: int, k: int, device: torch.device) -> torch.Tensor:
    """A stand-in for the newest queue keys: a von Mises-Fisher-like mixture of k clusters."""
    return clustered_unit_vectors(n, dim, k, generator=torch.Generator().manual_seed(seed)).to(device)


def bench_kmeans(args: argparse.Namespace, device: torch.device) -> None:
    kwargs = {} if args.n_init is None else {"n_init": args.n_init}
    rows = []
    for seed in range(args.seeds):
        x = clustered_keys(seed, args.points, args.dim, args.clusters, device)
        gen = torch.Generator(device=device)
        ours_t, ours = timed(
            lambda: spherical_kmeans(x, args.clusters, generator=gen.manual_seed(seed), **kwargs),  # noqa: B023
            args.repeats,
            device,
        )
        theirs_t, theirs = timed(lambda: geomstats_kmeans(x, args.clusters, seed=seed), args.repeats, device)  # noqa: B023
        x64 = x.double().cpu()
        inertias = (float(geodesic_inertia(x64, c.double().cpu())) for c in (ours, theirs))
        medians = statistics.median(ours_t), statistics.median(theirs_t)
        rows.append((min(ours_t), min(theirs_t), *medians, *inertias))
    t_ours, t_theirs, med_ours, med_theirs, i_ours, i_theirs = (statistics.median(col) for col in zip(*rows))
    speedup = statistics.median(r[1] / r[0] for r in rows)
    speedup_med = statistics.median(r[3] / r[2] for r in rows)
    inertia_ratio = statistics.median(r[4] / r[5] for r in rows)
    print(f"\n[k-means] {args.points} x {args.dim} -> {args.clusters}, median over {args.seeds} seeds")
    print("  time = fastest of the repeats (robust to other processes); median of the repeats in ()")
    for name, t, med, inertia in (("torch spherical_kmeans", t_ours, med_ours, i_ours), ("geomstats RiemannianKM", t_theirs, med_theirs, i_theirs)):
        print(f"  {name} : {t * 1e3:8.2f} ms ({med * 1e3:7.2f})   inertia {inertia:9.3f}")
    print(f"  speed-up (geomstats/torch time) : {speedup:6.1f}x ({speedup_med:.1f}x)   goal >= 20x")
    print(f"  inertia ratio (torch/geomstats) : {inertia_ratio:6.4f}   goal <= 1")
    print(f"  torch inertia <= geomstats on {sum(r[4] <= r[5] for r in rows)} of {args.seeds} seeds")


def bench_hallucinate(args: argparse.Namespace, device: torch.device) -> None:
    gen = torch.Generator(device=device).manual_seed(0)
    # keys from the same distribution as the queue the prototypes are fitted to, as in training
    data = clustered_keys(0, args.points + args.batch, args.dim, args.clusters, device)
    queue, keys = data[: args.points], data[args.points :]
    prototypes = spherical_kmeans(queue, args.clusters, generator=gen)
    sizes = f"B={args.batch}, G={args.positives}, N={args.clusters}, D={args.dim}, λ={args.lam}"
    print(f"\n[hallucinate] {sizes}; fastest of the repeats, median in ()")
    for mode in ("paper", "official", "hardest"):
        times, (_, keep) = timed(
            lambda: hallucinate(keys, prototypes, args.positives, args.lam, t_sampling=mode, generator=gen),  # noqa: B023
            max(args.repeats, 20),
            device,
        )
        median, fastest = statistics.median(times) * 1e3, min(times) * 1e3
        print(f"  {mode:8s}: {fastest:7.3f} ms ({median:7.3f}), kept {keep.float().mean():.3f}")


def bench_training_step(args: argparse.Namespace, device: torch.device) -> None:
    """Training step of `halp` over `moco` at the paper's hallucination settings (G=100, N=20,
    K=256, refresh every 5 iterations, term active from the first step, queue 16384 of real keys),
    steps interleaved so both see the same machine load; the mean over a multiple of the refresh
    period includes the k-means refreshes. Paper: 1.13x time per epoch."""
    from halp_bench.config import make_configs
    from halp_bench.methods.base import Batch, create_method
    from halp_bench.registry import load_plugins
    from halp_bench.skeleton import NTU25, DataSpec

    load_plugins()
    sizes = {
        "small projection (BiGRU 1x128, head 256->256->64)": ["encoder.hidden_size=128", "method.proj_hidden=256", "method.proj_dim=64"],
        "paper projection (BiGRU 1x1024, head 2048->2048->128)": ["encoder.hidden_size=1024", "method.proj_hidden=2048", "method.proj_dim=128"],
    }
    common = [
        "encoder.num_layers=1",
        "method.queue_size=16384",
        "method.start_epoch=0",
        "method.prototype_refresh=5",
        "method.num_positives=100",
        "method.num_prototypes=20",
        "method.prototype_queue=256",
        "method.mu=1",
        f"data.frames={args.step_frames}",
        f"device={device.type}",
    ]
    print(f"\n## training step, halp vs moco (batch {args.step_batch}, {args.step_frames} frames, {args.steps} steps each, interleaved)")
    print("| encoder | moco ms/step | halp ms/step | halp / moco |")
    print("|---|---|---|---|")
    for label, overrides in sizes.items():
        configs = make_configs("cpu", [*common, *overrides], ["moco", "halp"])
        spec = DataSpec(channels=3, frames=args.step_frames, joints=25, persons=2, layout=NTU25)
        methods = {}
        for name in ("moco", "halp"):
            torch.manual_seed(0)
            method = create_method(name, configs[name], spec).to(device)
            method.queue.filled.fill_(method.queue.size)  # hallucination active from the first step
            methods[name] = (method, torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9))
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(args.step_batch, 3, args.step_frames, 25, 2, generator=g, device=device)
        times: dict[str, list[float]] = {name: [] for name in methods}
        for step in range(args.steps + 5):
            for name, (method, optimizer) in methods.items():
                _sync(device)
                start = time.perf_counter()
                batch = Batch((x, x.flip(2)), epoch=0, iteration=step, step=step, total_steps=args.steps + 5)
                method.step_momentum_targets(batch)
                losses = method.training_step(batch)
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimizer.step()
                _sync(device)
                if step >= 5:  # warm-up steps are not timed
                    times[name].append(time.perf_counter() - start)
        moco_ms, halp_ms = (1000 * statistics.fmean(times[n]) for n in ("moco", "halp"))
        print(f"| {label} | {moco_ms:.1f} | {halp_ms:.1f} | {halp_ms / moco_ms:.3f}x |")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs, load average {load}")
    bench_kmeans(args, device)
    bench_hallucinate(args, device)
    if args.steps:
        bench_training_step(args, device)


if __name__ == "__main__":
    main()
