"""One pretraining loop for every method: SGD with step decay, augmentation on the device,
a progress bar with loss and ETA, atomic checkpoints, exact resume, time per epoch and peak memory.

Exact resume: a checkpoint holds everything the rest of the run depends on (networks, optimiser,
scheduler, the method's queues, prototypes and generators, every global and explicit RNG, the
position (epoch, iteration), the running loss sums and timings), so a run killed at any point and
rerun continues bit-for-bit as if it had never stopped, on the same machine.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from halp_bench.common.atomic import atomic_write_bytes, remove_temporaries
from halp_bench.common.progress import progress_bar
from halp_bench.config import RunConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.datasets.loader import BatchLoader
from halp_bench.datasets.transforms import pretrain_view
from halp_bench.engine import distributed
from halp_bench.engine.checkpoint import load_checkpoint, save_checkpoint
from halp_bench.engine.compile import compiled_encoders
from halp_bench.engine.device import rng_states, set_rng_states
from halp_bench.engine.meters import PeakMemory, Stopwatch
from halp_bench.engine.precision import Precision
from halp_bench.errors import CheckpointError, ConfigError, TrainingError
from halp_bench.methods.base import Batch, Method, check_finite

CHECKPOINT_FORMAT = 2
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "log.csv"
# Settings that change what pretraining computes; a checkpoint made with others is not resumed.
PRETRAIN_SECTIONS = ("seed", "precision", "sync_batchnorm", "encoder", "data", "augment", "method", "pretrain")


@dataclass
class PretrainResult:
    epochs: int
    epoch_times: list[float] = field(default_factory=list)  # seconds of training per epoch
    losses: list[dict[str, float]] = field(default_factory=list)  # mean of each loss per epoch
    peak_mb: float = 0.0  # over every process that worked on this run (resumed runs included)
    increase_mb: float = 0.0
    resumed_from: int = 0  # epochs already done when this call started
    compile_seconds: float = 0.0  # with compile_encoders: first steps, compilation included, of every call (not in epoch_times)

    @property
    def time_per_epoch(self) -> float:
        return sum(self.epoch_times) / len(self.epoch_times) if self.epoch_times else 0.0


@dataclass
class _Position:
    """Where training stands, and the partial state of the epoch in progress."""

    epoch: int = 0  # epochs completed
    iteration: int = 0  # batches completed in the epoch in progress
    shuffle_state: Tensor | None = None  # data-order generator before this epoch's permutation
    loss_sums: dict[str, Tensor] = field(default_factory=dict)  # running sums over this epoch's batches
    seconds: float = 0.0  # training time spent in this epoch so far

    def describe(self) -> str:
        return f"epoch {self.epoch + 1}, iteration {self.iteration}" if self.iteration else f"the end of epoch {self.epoch}"


def pretrain_signature(cfg: RunConfig) -> dict[str, Any]:
    full = cfg.to_dict()
    return {key: full[key] for key in PRETRAIN_SECTIONS}


def make_optimizer(method: Method, cfg: RunConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = cfg.pretrain
    optimizer = torch.optim.SGD(method.param_groups(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(opt.milestones), gamma=opt.gamma)
    return optimizer, scheduler


def pretrain(
    method_name: str,
    method: Method,
    train: SkeletonSubset,
    cfg: RunConfig,
    device: torch.device,
    run_dir: Path,
    *,
    show_progress: bool = True,
    say: Callable[[str], None] = print,
    on_epoch_end: Callable[[int], None] | None = None,
    compile_encoders: bool = False,
) -> PretrainResult:
    """Train `method` on `train` for `cfg.pretrain.epochs`, resuming from `run_dir/checkpoint.pt`.

    A checkpoint is written every `cfg.checkpoint_every` epochs, every `cfg.checkpoint_every_iters`
    iterations (0 turns either off) and at the end. A non-finite loss (or parameters) stops training
    with a TrainingError that names the epoch; the last checkpoint on disk is then still a good one.
    `on_epoch_end(epoch)` (1-based) runs after each epoch's log and checkpoint, outside the timed
    part, e.g. the runner's kNN monitor; it must not draw from the training generators.
    Under torchrun (engine/distributed.py) each rank trains on its slice of every global batch of
    `cfg.pretrain.batch_size`; rank 0 alone writes the checkpoint and the log.
    `compile_encoders` runs the encoders through torch.compile while training (engine/compile.py).
    """
    epochs = cfg.pretrain.epochs
    every_epochs, every_iters = cfg.checkpoint_every, cfg.checkpoint_every_iters
    if every_epochs < 0 or every_iters < 0:
        raise ConfigError(f"checkpoint_every={every_epochs}, checkpoint_every_iters={every_iters}: expected counts >= 0 (0 = off)")
    result = PretrainResult(epochs=epochs)
    method.to(device)
    where = distributed.info()
    precision = Precision(cfg.precision, device)
    distributed.prepare(method, cfg.sync_batchnorm)
    optimizer, scheduler = make_optimizer(method, cfg)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)  # the same permutation on every rank
    augment_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1 + 1_000_003 * where.rank)
    loader = BatchLoader(train, cfg.pretrain.batch_size, device, shuffle=True, drop_last=True, generator=shuffle_gen,
                         rank=where.rank, world_size=where.world_size)
    ckpt_path = run_dir / CHECKPOINT_FILE
    if where.is_main:
        remove_temporaries(ckpt_path)
    distributed.barrier()  # no rank looks for the checkpoint while rank 0 tidies
    at = _Position(shuffle_state=shuffle_gen.get_state())
    last_saved: _Position | None = None
    earlier_peak = earlier_increase = 0.0  # memory of the processes that ran earlier parts
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        check_compatible(state, method_name, cfg, ckpt_path)
        if not 0 <= int(state["iteration"]) < max(len(loader), 1):
            raise CheckpointError(ckpt_path, f"stopped at iteration {state['iteration']} but an epoch now has {len(loader)}; did the dataset change? use --force")
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        precision.load_state_dict(state.get("grad_scaler", {}))
        ranks = state.get("rng_ranks") or [state["rng"]]  # each rank's generators (one in a single process)
        own = ranks[where.rank] if len(ranks) == where.world_size else state["rng"]  # another world size: not bit-exact
        augment_gen.set_state(own["augment"])
        set_rng_states(own["global"])
        at = _Position(int(state["epoch"]), int(state["iteration"]), state["rng"]["shuffle"],
                       {k: v.to(device) for k, v in state["epoch_loss_sums"].items()}, float(state["epoch_seconds"]))
        last_saved = replace(at, loss_sums=dict(at.loss_sums))  # `at` moves on as training does
        history = state["history"]
        result.epoch_times = list(history["epoch_times"])
        result.losses = [dict(d) for d in history["losses"]]
        earlier_peak, earlier_increase = float(history["peak_mb"]), float(history["increase_mb"])
        result.compile_seconds = float(history.get("compile_seconds", 0.0))
        result.resumed_from = at.epoch
        if at.epoch < epochs:
            say(f"resuming {method_name} from epoch {at.epoch} of {epochs}, iteration {at.iteration} of {len(loader)} ({ckpt_path})")
        if where.is_main:
            write_log(run_dir / LOG_FILE, result)  # drop epochs logged after this checkpoint was written

    step_fn = distributed.training_step_fn(method)  # after loading: DDP starts from rank 0's weights
    compiling = compile_encoders
    if at.epoch < epochs and where.is_main:
        batch = cfg.pretrain.batch_size
        say(f"{method_name}: global batch {batch}" + (f" ({where.world_size} processes x {batch // where.world_size})" if where.world_size > 1 else "")
            + f", lr {cfg.pretrain.lr:g}, precision {cfg.precision}{', compiled encoders' if compile_encoders else ''}, {len(loader)} steps per epoch")
    frames = cfg.data.frames
    watch = Stopwatch(device)
    with (
        PeakMemory(device) as memory,
        compiled_encoders(method, device, compile_encoders),
        progress_bar(show_progress and where.is_main) as bar,
        loader,  # its read-ahead thread lives across epochs and ends with the pretraining
    ):
        estimate = CostEstimate(method_name, say if where.is_main else lambda _: None, memory,
                                lambda: f" (and {result.compile_seconds:.0f} s compiling)" if compile_encoders else "")

        def save(position: _Position) -> None:
            nonlocal last_saved
            _check_finite_state(method, method_name, position, last_saved, ckpt_path)
            generators = distributed.gather_objects({"augment": augment_gen.get_state(), "global": rng_states()})
            if not where.is_main:
                last_saved = position
                return
            save_checkpoint(
                {
                    "format": CHECKPOINT_FORMAT,
                    "method": method_name,
                    "config": pretrain_signature(cfg),
                    "epoch": position.epoch,
                    "iteration": position.iteration,
                    "model": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": {"shuffle": position.shuffle_state, **generators[0]},
                    **({"rng_ranks": generators} if where.world_size > 1 else {}),
                    "grad_scaler": precision.state_dict(),
                    "epoch_loss_sums": {k: v.detach().cpu() for k, v in position.loss_sums.items()},
                    "epoch_seconds": position.seconds,
                    "history": {
                        "epoch_times": result.epoch_times,
                        "losses": result.losses,
                        "peak_mb": max(earlier_peak, memory.peak_mb),
                        "increase_mb": max(earlier_increase, memory.increase_mb),
                        "compile_seconds": result.compile_seconds,
                    },
                },
                ckpt_path,
            )
            last_saved = position

        shuffle_gen.set_state(at.shuffle_state)
        at_start = at.epoch
        task = bar.add_task(f"pretrain {method_name}", total=max((epochs - at.epoch) * len(loader) - at.iteration, 0))
        for epoch in range(at.epoch, epochs):
            method.train()
            if epoch > at.epoch:  # a new epoch starts from scratch; the first may be a resumed one
                at = _Position(epoch, 0, shuffle_gen.get_state())
            watch.start()
            for iteration, (x, lengths, _) in enumerate(loader.batches(at.iteration), start=at.iteration):
                batch = Batch(
                    view_q=pretrain_view(x, lengths, frames, cfg.augment, augment_gen),
                    view_k=pretrain_view(x, lengths, frames, cfg.augment, augment_gen),
                    epoch=epoch,
                    iteration=iteration,
                )
                with precision.autocast():
                    losses = step_fn(batch)
                try:
                    check_finite(losses)
                    problem = ""
                except FloatingPointError as exc:
                    problem = str(exc)
                if distributed.any_rank(bool(problem), device):  # all ranks stop together
                    raise TrainingError(f"{method_name}: {problem or 'a loss is not finite on another rank'} at epoch {epoch + 1}, "
                                        f"iteration {iteration}; {_kept(last_saved, ckpt_path)}")
                optimizer.zero_grad(set_to_none=True)
                precision.backward_and_step(losses["loss"], optimizer)
                if compiling:  # this process's first step compiles: not an epoch's cost
                    result.compile_seconds += watch.elapsed()
                    compiling = False
                    watch.start()
                for name, value in losses.items():  # summed on the device: no sync per step
                    at.loss_sums[name] = at.loss_sums[name] + value.detach() if name in at.loss_sums else value.detach().clone()
                at.iteration = iteration + 1
                estimate.after_step((epochs - epoch) * len(loader) - at.iteration)
                text = f"loss {float(losses['loss'].detach()):.3f}" if iteration % 20 == 0 else None
                bar.update(task, advance=1, **({"description": f"pretrain {method_name} ep {epoch + 1}/{epochs} {text}"} if text else {}))
                step = epoch * len(loader) + at.iteration
                if every_iters and step % every_iters == 0 and at.iteration < len(loader):
                    at.seconds += watch.elapsed()  # checkpoint writes are not training time
                    save(_Position(epoch, at.iteration, at.shuffle_state, dict(at.loss_sums), at.seconds))
                    watch.start()
            scheduler.step()
            result.epoch_times.append(at.seconds + watch.elapsed())
            result.losses.append({k: float(v) / max(len(loader), 1) for k, v in distributed.mean_over_ranks(at.loss_sums).items()})
            if where.is_main:
                write_log(run_dir / LOG_FILE, result)
            if epoch == at_start:
                estimate.after_first_epoch(result.epoch_times[-1], epochs - epoch - 1)
            step = (epoch + 1) * len(loader)
            if (every_epochs and (epoch + 1) % every_epochs == 0) or epoch + 1 == epochs or (every_iters and step % every_iters == 0):
                save(_Position(epoch + 1, 0, shuffle_gen.get_state()))
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
        result.peak_mb = max(earlier_peak, memory.peak_mb)
        result.increase_mb = max(earlier_increase, memory.increase_mb)
    return result


ESTIMATE_AFTER_STEPS = 20  # timed steps before the cost of the rest of a pretraining is said


class CostEstimate:
    """Says once per call what the rest of a pretraining will cost, early: after
    ESTIMATE_AFTER_STEPS steps (the call's first step, which warms up or compiles, is not timed) or
    at the end of the first epoch if that comes sooner. A paper-size epoch on a slow device can
    take hours; the estimate must not wait for it."""

    def __init__(self, method_name: str, say: Callable[[str], None], memory: PeakMemory, note: Callable[[], str]):
        self.method_name, self.say, self.memory, self.note = method_name, say, memory, note
        self.done, self.timed, self.clock = False, -1, 0.0

    def after_step(self, steps_left: int) -> None:
        if self.done:
            return
        self.timed += 1
        if self.timed == 0:
            self.clock = time.perf_counter()
        elif self.timed == ESTIMATE_AFTER_STEPS and steps_left > 0:
            per_step = (time.perf_counter() - self.clock) / self.timed
            self._say(f"{per_step:.3f} s per step over {self.timed} steps", per_step * steps_left, f"{steps_left} steps left")

    def after_first_epoch(self, epoch_seconds: float, epochs_left: int) -> None:
        if not self.done and epochs_left > 0:
            self._say(f"first epoch {epoch_seconds:.2f} s", epoch_seconds * epochs_left, f"{epochs_left} epochs left")
        self.done = True

    def _say(self, measured: str, seconds_left: float, what_left: str) -> None:
        hours, rest = divmod(int(seconds_left), 3600)
        duration = f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"
        self.say(f"{self.method_name}: {measured}, peak memory {self.memory.peak_mb:.0f} MB; "
                 f"about {duration} for the {what_left}{self.note()}")
        self.done = True


def _kept(last_saved: _Position | None, path: Path) -> str:
    if last_saved is None:
        return "no checkpoint had been written yet"
    return f"the last good checkpoint (at {last_saved.describe()}) is kept at {path}"


def _check_finite_state(method: Method, method_name: str, position: _Position, last_saved: _Position | None, path: Path) -> None:
    """Refuse to checkpoint NaN/Inf weights or buffers (a finite loss can still come with an
    overflowing step), so that the checkpoint on disk is always one worth resuming from."""
    floats = [(name, t) for name, t in method.state_dict().items() if isinstance(t, Tensor) and t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in floats]) if floats else torch.ones(0, dtype=torch.bool)
    if not bool(finite.all()):
        bad = [name for (name, _), ok in zip(floats, finite.tolist()) if not ok]
        raise TrainingError(
            f"{method_name}: non-finite values in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} at {position.describe()}; "
            f"{_kept(last_saved, path)}"
        )


def check_compatible(state: dict[str, Any], method_name: str, cfg: RunConfig, path: Path) -> None:
    """Refuse to resume a checkpoint made by another method or with other pretraining settings."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT} (written by another halp-bench version); use another --out or --force")
    if state.get("method") != method_name:
        raise CheckpointError(path, f"was made by method '{state.get('method')}', not '{method_name}'; use another --out or --force")
    ours, theirs = pretrain_signature(cfg), state.get("config", {})
    diffs = [
        f"{section}.{key}: checkpoint {theirs.get(section, {}).get(key)!r} vs now {value!r}"
        for section in PRETRAIN_SECTIONS
        if isinstance(ours[section], dict)
        for key, value in ours[section].items()
        if _normalise(theirs.get(section, {}).get(key)) != _normalise(value)
    ]
    diffs += [f"{key}: checkpoint {theirs.get(key)!r} vs now {value!r}" for key, value in ours.items()
              if not isinstance(value, dict) and theirs.get(key) != value]
    if diffs:
        raise CheckpointError(path, "was made with other pretraining settings (" + "; ".join(diffs[:4]) + "); use another --out or --force")


def _normalise(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def write_log(path: Path, result: PretrainResult) -> None:
    """log.csv: one row per finished epoch (epoch, seconds, each loss), rewritten atomically from
    the history, so that it always matches the checkpoint after a resume and a loss that starts
    later (HaLP's term) gets its own column instead of shifting the others."""
    names = list(dict.fromkeys(name for losses in result.losses for name in losses))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["epoch", "seconds", *names])
    for epoch, (seconds, losses) in enumerate(zip(result.epoch_times, result.losses), start=1):
        values = (losses.get(name, "") for name in names)
        writer.writerow([epoch, f"{seconds:.4f}", *(f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v for v in values)])
    data = text.getvalue().encode()
    atomic_write_bytes(path, lambda handle: handle.write(data))
