"""Training-step time of `bigru_official` (whole-sequence GRU calls) against the official per-frame loop,
and (`--compare`) the BiGRU against ST-GCN at the papers' and the cpu preset's sizes.

One step = forward + backward of `encoder(x).sum()` (input BatchNorm included) on a batch of
(N, 3, T, V, M) skeletons. Both models carry the same weights; the largest feature difference is
printed next to the times. `--alternatives` adds two fused forms of the same math for comparison:
  stacked-bidir: one bidirectional GRU call per layer on [x; time-reversed x] (directions run in
                 parallel on cuDNN, but twice the batch);
  block-diag:    one 2H-wide GRU per layer whose weights are block-diagonal (one call, both input
                 projections in one matmul, but twice the recurrent arithmetic).

    python benchmarks/bench_encoder.py                        # 128x1, 256x2, 1024x3 on the CPU
    python benchmarks/bench_encoder.py --skip-large --alternatives
    python benchmarks/bench_encoder.py --threads 1 --clock process   # a CPU shared with other jobs
    python benchmarks/bench_encoder.py --device cuda --large-reps 5 --alternatives

`--compare`: parameters, time per training step and peak memory of the encoders the methods train,
`bigru` (CMD/HaLP: 3x1024, 64 frames), `stgcn` (SkeletonCLR/CrosSCLR/AimCLR: h16/256, 50 frames) and
`transformer` (MAMP: 8x256, 120 frames, at `--transformer-batch`, MAMP's 32 per GPU by default;
tokens per second = sequences x tokens / step time), the transformer with SDPA and with a plain
matmul-softmax attention side by side, at those sizes and at the cpu preset's (16 frames), on NTU-25
with 2 persons. Each size runs in a fresh process, so its peak memory (CPU: resident set growth
over the process after imports; CUDA: peak allocated) is its own. `--encoders` keeps some.

    python benchmarks/bench_encoder.py --compare --batch 16 --threads 1
    python benchmarks/bench_encoder.py --compare --encoders transformer --transformer-batch 4 --threads 1 --clock process
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch
from torch import Tensor, nn

from halp_bench.config import EncoderSettings
from halp_bench.encoders import build_encoder
from halp_bench.encoders.bigru import BiGRUSettings, OfficialBiGRU, PerFrameBIGRU
from halp_bench.encoders.stgcn import STGCNSettings
from halp_bench.encoders.transformer import TransformerSettings
from halp_bench.skeleton import NTU25, DataSpec, chain_layout

LARGE_HIDDEN = 1024  # sizes from here on are slow per-frame on a CPU (seconds per step)


class StackedBidirectional(nn.Module):
    """Per layer one bidirectional call on the batch stacked with its time-reversed copy: the
    forward direction on the first half and the backward direction on the second half are the two
    forward-in-time GRUs of the official math."""

    def __init__(self, enc: OfficialBiGRU):
        super().__init__()
        self.enc = enc
        self.layers = nn.ModuleList()
        for fwd, rev in zip(enc.gru_fwd, enc.gru_rev):
            gru = nn.GRU(fwd.input_size, fwd.hidden_size, batch_first=True, bidirectional=True)
            with torch.no_grad():
                for name, p in fwd.named_parameters():
                    getattr(gru, name).copy_(p)
                    getattr(gru, name + "_reverse").copy_(getattr(rev, name))
            self.layers.append(gru)

    def forward(self, x: Tensor) -> Tensor:
        h = self.enc._frames(x)
        n, hidden = h.shape[0], self.enc.hidden_size
        for gru in self.layers:
            out, _ = gru(torch.cat([h, h.flip(1)]))
            h = torch.cat([out[:n, :, :hidden], out[n:, :, hidden:].flip(1)], dim=2)
        return h[:, -1]


class BlockDiagonal(nn.Module):
    """Per layer one GRU of width 2H whose gates interleave both directions' units, its recurrent
    weights block-diagonal (kept dense here: the cost of the fused form is what is timed)."""

    def __init__(self, enc: OfficialBiGRU):
        super().__init__()
        self.enc = enc
        self.layers = nn.ModuleList()
        hidden = enc.hidden_size
        for fwd, rev in zip(enc.gru_fwd, enc.gru_rev):
            gru = nn.GRU(fwd.input_size, 2 * hidden, batch_first=True)
            with torch.no_grad():
                gru.weight_hh_l0.zero_()
                for gate in range(3):  # reset, update, new: rows [gate*2H, (gate+1)*2H)
                    rows = slice(gate * hidden, (gate + 1) * hidden)
                    for half, src in enumerate((fwd, rev)):
                        first = (2 * gate + half) * hidden
                        out_rows = slice(first, first + hidden)
                        cols = slice(half * hidden, (half + 1) * hidden)
                        gru.weight_ih_l0[out_rows] = src.weight_ih_l0[rows]
                        gru.weight_hh_l0[out_rows, cols] = src.weight_hh_l0[rows]
                        gru.bias_ih_l0[out_rows] = src.bias_ih_l0[rows]
                        gru.bias_hh_l0[out_rows] = src.bias_hh_l0[rows]
            self.layers.append(gru)

    def forward(self, x: Tensor) -> Tensor:
        h = self.enc._frames(x)
        for gru in self.layers:
            h, _ = gru(h)
        return h[:, -1]


def step_time(model: nn.Module, forward: Callable[[Tensor], Tensor], x: Tensor, reps: int, clock: Callable[[], float]) -> float:
    """Fastest of `reps` training steps (forward + backward of the feature sum) after a warm-up: on a
    shared machine the minimum is the time least disturbed by other load."""
    times = []
    for i in range(reps + 1):
        model.zero_grad(set_to_none=True)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = clock()
        forward(x).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i:
            times.append(clock() - start)
    return min(times)


def compared_sizes() -> list[tuple[str, EncoderSettings, int]]:
    """(preset, encoder settings, frames): the papers' sizes and the cpu preset's."""
    return [
        ("paper", BiGRUSettings(name="bigru"), 64),
        ("paper", STGCNSettings(), 50),
        ("cpu", BiGRUSettings(name="bigru", **BiGRUSettings.presets["cpu"]), 16),
        ("cpu", STGCNSettings(**STGCNSettings.presets["cpu"]), 16),
        ("paper", TransformerSettings(), 120),
        ("paper", TransformerSettings(attention="plain"), 120),
        ("cpu", TransformerSettings(**TransformerSettings.presets["cpu"]), 16),
        ("cpu", TransformerSettings(**TransformerSettings.presets["cpu"], attention="plain"), 16),
    ]


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def measure(settings: EncoderSettings, frames: int, batch: int, reps: int, device: str, threads: int, clock: str) -> tuple[int, float, float]:
    """(parameters, seconds per step, peak MiB) of one encoder; run in a fresh process."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    before = _rss_mib()
    data = DataSpec(channels=3, frames=frames, joints=25, persons=2, layout=NTU25)
    encoder = build_encoder(data, settings).to(device)
    x = torch.randn(batch, 3, frames, 25, 2, device=device)
    if x.is_cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = step_time(encoder, encoder, x, reps, time.perf_counter if clock == "wall" else time.process_time)
    if x.is_cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before  # ru_maxrss: KiB on Linux
    return sum(p.numel() for p in encoder.parameters()), seconds, peak


def compare(args: argparse.Namespace) -> None:
    peak = "peak CUDA MiB" if args.device.startswith("cuda") else "peak RSS +MiB"
    print(
        f"device {args.device}, torch {torch.__version__}, {args.threads or torch.get_num_threads()} CPU threads; batch {args.batch}, "
        f"NTU-25 x 2 persons; {args.clock}-clock ms per training step (forward + backward, best of {args.reps})"
    )
    print(f"{'preset':>6} {'encoder':>22} {'frames':>6} {'batch':>5} {'params':>10} {'ms/step':>9} {peak:>14} {'tokens/s':>9}")
    wanted = set(args.encoders.split(",")) if args.encoders else None
    for preset, settings, frames in compared_sizes():
        if wanted is not None and settings.name not in wanted:
            continue
        transformer = isinstance(settings, TransformerSettings)
        batch = args.transformer_batch if transformer and preset == "paper" else args.batch
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            params, seconds, mib = pool.submit(measure, settings, frames, batch, args.reps, args.device, args.threads, args.clock).result()
        tokens = f"{batch * 2 * frames // settings.patch_frames * 25 / seconds:9.0f}" if transformer else f"{'-':>9}"
        label = settings.describe() + (f" {settings.attention}" if transformer else "")
        print(f"{preset:>6} {label:>22} {frames:>6} {batch:>5} {params:>10,} {seconds * 1e3:9.1f} {mib:14.0f} {tokens}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128x1,256x2,1024x3", help="HIDDENxLAYERS, comma separated")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--joints", type=int, default=25)
    parser.add_argument("--persons", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5, help="timed steps per model (the best is reported)")
    parser.add_argument("--large-reps", type=int, default=1, help=f"timed steps at hidden >= {LARGE_HIDDEN}")
    parser.add_argument("--skip-large", action="store_true", help=f"skip sizes with hidden >= {LARGE_HIDDEN}")
    parser.add_argument("--alternatives", action="store_true", help="also time the two fused alternatives")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="process: this process's CPU seconds, robust to other load on a shared CPU (with --threads 1)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--compare", action="store_true", help="instead: bigru, stgcn and transformer at the papers' and the cpu sizes")
    parser.add_argument("--encoders", default="", help="with --compare: only these encoder names, comma separated")
    parser.add_argument("--transformer-batch", type=int, default=32, help="with --compare: batch of the paper-size transformer (MAMP: 32 per GPU)")
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    channels = 3 * args.joints * args.persons
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"batch {args.batch}, {args.frames} frames, {channels} input channels; "
        f"{args.clock}-clock ms per training step (best of the timed steps)"
    )
    header = f"{'size':>8} {'official(fused)':>16} {'per-frame':>10} {'speed-up':>9}"
    if args.alternatives:
        header += f" {'stacked-bidir':>14} {'block-diag':>11}"
    print(header + f" {'max|diff|':>10}")

    for size in args.sizes.split(","):
        hidden, layers = (int(v) for v in size.lower().split("x"))
        if hidden >= LARGE_HIDDEN and args.skip_large:
            continue
        reps = args.large_reps if hidden >= LARGE_HIDDEN else args.reps
        torch.manual_seed(0)
        settings = BiGRUSettings(name="bigru_official", hidden_size=hidden, num_layers=layers)
        data = DataSpec(channels=3, frames=args.frames, joints=args.joints, persons=args.persons, layout=chain_layout(args.joints))
        reference = PerFrameBIGRU(channels, hidden, layers).to(device)
        official = OfficialBiGRU(data, settings).to(device)
        official.load_official_state_dict(reference.state_dict())
        x = torch.randn(args.batch, 3, args.frames, args.joints, args.persons, device=device)
        with torch.no_grad():
            expected = reference(x)
            diff = (official(x) - expected).abs().max().item()
        fused_s = step_time(official, official, x, reps, clock)
        frame_s = step_time(reference, reference, x, reps, clock)
        row = f"{size:>8} {fused_s * 1e3:16.1f} {frame_s * 1e3:10.1f} {frame_s / fused_s:8.2f}x"
        if args.alternatives:
            for width, alt in ((14, StackedBidirectional(official)), (11, BlockDiagonal(official))):
                alt.to(device)
                with torch.no_grad():
                    diff = max(diff, (alt(x) - expected).abs().max().item())
                row += f" {step_time(alt, alt, x, reps, clock) * 1e3:{width}.1f}"
        print(row + f" {diff:10.1e}", flush=True)


if __name__ == "__main__":
    main()
