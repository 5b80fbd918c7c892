"""One pretraining loop for every method: the optimiser and schedule its settings name, the method's
own views made on the device, a progress bar with loss and ETA, atomic checkpoints, exact resume,
time per epoch and peak memory.

Exact resume: a checkpoint holds everything the rest of the run depends on (networks, optimiser,
scheduler, the method's queues, prototypes and generators, every global and explicit RNG, the
position (epoch, iteration), the running loss sums and timings), so a run killed at any point and
rerun continues bit-for-bit as if it had never stopped, on the same machine. `TrainingState` is
the one object that both writes and reads that state.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor

from halp_bench.common import distributed
from halp_bench.common.atomic import atomic_write_bytes, remove_temporaries
from halp_bench.common.loggers import RunLogger
from halp_bench.common.loop import LoopHooks, TrainLoop
from halp_bench.common.meters import PeakMemory
from halp_bench.common.optim import make_optimizer, make_schedule
from halp_bench.common.precision import Precision
from halp_bench.common.progress import progress_bar
from halp_bench.config import RunConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.datasets.loader import BatchLoader
from halp_bench.engine import parallel
from halp_bench.engine.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from halp_bench.engine.compile import compiled_encoders
from halp_bench.engine.device import keep_thread_count
from halp_bench.engine.estimate import CostEstimate
from halp_bench.engine.state import Position, PretrainResult, TrainingState
from halp_bench.errors import CheckpointError, ConfigError, TrainingError
from halp_bench.methods.base import Batch, Method, check_finite

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "log.csv"


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
    logger: RunLogger | None = None,
) -> PretrainResult:
    """Train `method` on `train` for `cfg.pretrain.epochs`, resuming from `run_dir/checkpoint.pt`.

    A checkpoint is written every `cfg.checkpoint_every` epochs, every `cfg.checkpoint_every_iters`
    iterations (0 turns either off) and at the end. A non-finite loss (or parameters) stops training
    with a TrainingError that names the epoch; the last checkpoint on disk is then still a good one.
    `on_epoch_end(epoch)` (1-based) runs after each epoch's log and checkpoint, outside the timed
    part, e.g. the runner's kNN monitor; it must not draw from the training generators.
    Under torchrun (engine/parallel.py) each rank trains on its slice of every global batch of
    `cfg.pretrain.batch_size`; rank 0 alone writes the checkpoint and the log.
    `compile_encoders` runs the encoders through torch.compile while training (engine/compile.py).
    `logger` (common/loggers.py) receives, per epoch (step = epoch, 1-based), `pretrain/<loss>` for
    every loss of log.csv, `pretrain/epoch_seconds` (log.csv's `seconds`), `pretrain/lr` (of the
    epoch's last step) and `pretrain/peak_memory_mb` (so far, earlier processes of a resumed run
    included); rank 0 alone logs.
    """
    return _Pretraining(method_name, method, train, cfg, device, run_dir, show_progress, say, on_epoch_end, compile_encoders, logger or RunLogger()).run()


class _Pretraining:
    """The steps of one `pretrain` call: set up, resume, train epoch by epoch, checkpoint."""

    def __init__(
        self,
        method_name: str,
        method: Method,
        train: SkeletonSubset,
        cfg: RunConfig,
        device: torch.device,
        run_dir: Path,
        show_progress: bool,
        say: Callable[[str], None],
        on_epoch_end: Callable[[int], None] | None,
        compile_encoders: bool,
        logger: RunLogger,
    ):
        if cfg.checkpoint_every < 0 or cfg.checkpoint_every_iters < 0:
            raise ConfigError(f"checkpoint_every={cfg.checkpoint_every}, checkpoint_every_iters={cfg.checkpoint_every_iters}: expected counts >= 0 (0 = off)")
        self.name, self.method, self.cfg, self.device, self.run_dir = method_name, method, cfg, device, run_dir
        self.show_progress, self.on_epoch_end, self.compile_encoders = show_progress, on_epoch_end, compile_encoders
        self.where = distributed.info()
        self.logger = logger if self.where.is_main else RunLogger()
        self.say = say if self.where.is_main else (lambda _: None)
        self.epochs = cfg.pretrain.epochs
        self.ckpt_path = run_dir / CHECKPOINT_FILE
        method.to(device)
        precision = Precision(cfg.precision, device)
        parallel.prepare(method, cfg.sync_batchnorm)
        shuffle_gen = torch.Generator().manual_seed(cfg.seed)  # the same permutation on every rank
        augment_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1 + 1_000_003 * self.where.rank)
        self.loader = BatchLoader(
            train, cfg.pretrain.batch_size, device, shuffle=True, drop_last=True, generator=shuffle_gen, rank=self.where.rank, world_size=self.where.world_size
        )
        optimizer = make_optimizer(method.param_groups(), cfg.pretrain)
        schedule = make_schedule(optimizer, cfg.pretrain, len(self.loader))
        self.result = PretrainResult(epochs=self.epochs)
        self.state = TrainingState(method_name, method, cfg, optimizer, schedule, precision, shuffle_gen, augment_gen, self.result)
        self.last_saved: Position | None = None

    # ------------------------------------------------------------------ resume and save

    def resume(self) -> Position:
        """The position to start from: the checkpoint's (after restoring it) or the beginning."""
        if self.where.is_main:
            remove_temporaries(self.ckpt_path)
        distributed.barrier()  # no rank looks for the checkpoint while rank 0 tidies
        if not self.ckpt_path.exists():
            return Position(shuffle_state=self.state.shuffle_gen.get_state())
        state = load_checkpoint(self.ckpt_path)
        check_compatible(state, self.name, self.cfg, self.ckpt_path)
        if not 0 <= int(state["iteration"]) < max(len(self.loader), 1):
            raise CheckpointError(
                self.ckpt_path, f"stopped at iteration {state['iteration']} but an epoch now has {len(self.loader)}; did the dataset change? use --force"
            )
        keep_thread_count(state, self.ckpt_path, self.say)
        at = self.state.load(state, self.device, self.where)
        self.last_saved = at.snapshot()  # `at` moves on as training does
        self.result.resumed_from = at.epoch
        if at.epoch < self.epochs:
            self.say(f"resuming {self.name} from epoch {at.epoch} of {self.epochs}, iteration {at.iteration} of {len(self.loader)} ({self.ckpt_path})")
        if self.where.is_main:
            write_log(self.run_dir / LOG_FILE, self.result)  # drop epochs logged after this checkpoint was written
        return at

    def save(self, position: Position, memory: PeakMemory) -> None:
        _check_finite_state(self.method, self.name, position, self.last_saved, self.ckpt_path)
        ranks = distributed.gather_objects(self.state.generators())
        if self.where.is_main:
            save_checkpoint(self.state.state_dict(position, ranks, memory), self.ckpt_path)
        self.last_saved = position

    # ------------------------------------------------------------------ training

    def run(self) -> PretrainResult:
        at = self.resume()
        self.step_fn = parallel.training_step_fn(self.method)  # after loading: DDP starts from rank 0's weights
        if at.epoch < self.epochs:
            self.announce()
            self.logger.start(at.epoch + 1)  # a resumed run rewrites the epochs after its checkpoint
        self.compiling = self.compile_encoders
        with (
            PeakMemory(self.device) as memory,
            compiled_encoders(self.method, self.device, self.compile_encoders),
            progress_bar(self.show_progress and self.where.is_main) as bar,
            self.loader,  # its read-ahead thread lives across epochs and ends with the pretraining
        ):
            self.memory = memory
            note = (lambda: f" (and {self.result.compile_seconds:.0f} s compiling)") if self.compile_encoders else (lambda: "")
            self.estimate = CostEstimate(self.name, self.say, memory, note)
            self.state.shuffle_gen.set_state(at.shuffle_state)
            task = bar.add_task(f"pretrain {self.name}", total=max((self.epochs - at.epoch) * len(self.loader) - at.iteration, 0))
            self.first_epoch = at.epoch
            loop = TrainLoop(
                self.state.optimizer,
                self.state.schedule,
                self.state.precision,
                self.device,
                self.epochs,
                len(self.loader),
                bar=bar,
                task=task,
                label=f"pretrain {self.name}",
                show_loss=self.show_progress and self.where.is_main,
            )
            loop.fit(_PretrainHooks(self), at)
            self.result.peak_mb = max(self.state.earlier_peak, memory.peak_mb)
            self.result.increase_mb = max(self.state.earlier_increase, memory.increase_mb)
        return self.result

    def announce(self) -> None:
        cfg, where, batch = self.cfg, self.where, self.cfg.pretrain.batch_size
        shares = f" ({where.world_size} processes x {batch // where.world_size})" if where.world_size > 1 else ""
        opt = cfg.pretrain
        self.say(
            f"{self.name}: global batch {batch}{shares}, {opt.optimizer} lr {opt.lr:g} ({opt.schedule}"
            f"{f', {opt.warmup_epochs} warm-up epochs' if opt.warmup_epochs else ''}), precision {cfg.precision}"
            f"{', compiled encoders' if self.compile_encoders else ''}, {len(self.loader)} steps per epoch"
        )

    def end_epoch(self, loop: TrainLoop, epoch: int, seconds: float) -> None:
        """The epoch's log line, checkpoint and `on_epoch_end`."""
        loader, every_iters = self.loader, self.cfg.checkpoint_every_iters
        self.result.epoch_times.append(seconds)
        means = distributed.mean_over_ranks(loop.state.loss_sums)
        self.result.losses.append(loop.epoch_means(means))
        if self.where.is_main:
            write_log(self.run_dir / LOG_FILE, self.result)
            peak = max(self.state.earlier_peak, self.memory.peak_mb)
            self.logger.log(
                {
                    **{f"pretrain/{name}": value for name, value in self.result.losses[-1].items()},
                    "pretrain/epoch_seconds": self.result.epoch_times[-1],
                    "pretrain/lr": loop.last_lr,
                    "pretrain/peak_memory_mb": peak,
                },
                epoch + 1,
            )
        if epoch == self.first_epoch:
            self.estimate.after_first_epoch(self.result.epoch_times[-1], self.epochs - epoch - 1)
        step = (epoch + 1) * len(loader)
        every_epochs = self.cfg.checkpoint_every
        if (every_epochs and (epoch + 1) % every_epochs == 0) or epoch + 1 == self.epochs or (every_iters and step % every_iters == 0):
            self.save(Position(epoch + 1, 0, shuffle_state=self.state.shuffle_gen.get_state()), self.memory)
        if self.on_epoch_end is not None:
            self.on_epoch_end(epoch + 1)

    def check_step(self, losses: dict[str, Tensor], epoch: int, iteration: int) -> None:
        """All ranks stop together on a non-finite loss, before the optimiser moves."""
        try:
            check_finite(losses)
            problem = ""
        except FloatingPointError as exc:
            problem = str(exc)
        if distributed.any_rank(bool(problem), self.device):
            raise TrainingError(
                f"{self.name}: {problem or 'a loss is not finite on another rank'} at epoch {epoch + 1}, "
                f"iteration {iteration}; {_kept(self.last_saved, self.ckpt_path)}"
            )


class _PretrainHooks(LoopHooks):
    """Pretraining's part of the shared loop: the method's views and losses, the exact-resume
    position, checkpoints every N iterations, the cost estimate and the compile time."""

    def __init__(self, run: _Pretraining):
        self.run = run
        self.shuffle_state: Tensor | None = None  # data-order generator before this epoch's permutation

    def batches(self, epoch: int, first_iteration: int) -> Iterable[tuple[Tensor, Tensor, Tensor]]:
        return self.run.loader.batches(first_iteration)

    def before_epoch(self, loop: TrainLoop, epoch: int) -> None:
        self.shuffle_state = self.run.state.shuffle_gen.get_state()
        self.run.method.train()

    def inputs(self, batch: tuple[Tensor, Tensor, Tensor], epoch: int, iteration: int) -> Batch:
        x, lengths, _ = batch
        per_epoch = len(self.run.loader)
        views = self.run.method.make_views(x, lengths, self.run.state.augment_gen)
        return Batch(views, epoch, iteration, epoch * per_epoch + iteration, self.run.epochs * per_epoch, self.run.cfg.seed, self.run.where.rank)

    def losses(self, inputs: Batch, epoch: int, iteration: int) -> dict[str, Tensor]:
        self.run.method.step_momentum_targets(inputs)  # the declared (online, target) pairs, before the step
        return self.run.step_fn(inputs)

    def check(self, losses: dict[str, Tensor], epoch: int, iteration: int) -> None:
        self.run.check_step(losses, epoch, iteration)

    def after_step(self, loop: TrainLoop, losses: dict[str, Tensor]) -> None:
        run, at = self.run, loop.state
        if run.compiling:  # this process's first step compiles: not an epoch's cost
            run.result.compile_seconds += loop.discard_lap()
            run.compiling = False
        run.estimate.after_step((run.epochs - at.epoch) * len(run.loader) - at.iteration)
        every_iters = run.cfg.checkpoint_every_iters
        step = at.epoch * len(run.loader) + at.iteration
        if every_iters and step % every_iters == 0 and at.iteration < len(run.loader):
            with loop.untimed():  # checkpoint writes are not training time
                run.save(Position(at.epoch, at.iteration, dict(at.loss_sums), at.seconds, shuffle_state=self.shuffle_state), run.memory)

    def after_epoch(self, loop: TrainLoop, seconds: float) -> None:
        self.run.end_epoch(loop, loop.state.epoch, seconds)


def _kept(last_saved: Position | None, path: Path) -> str:
    if last_saved is None:
        return "no checkpoint had been written yet"
    return f"the last good checkpoint (at {last_saved.describe()}) is kept at {path}"


def _check_finite_state(method: Method, method_name: str, position: Position, last_saved: Position | None, path: Path) -> None:
    """Refuse to checkpoint NaN/Inf weights or buffers (a finite loss can still come with an
    overflowing step), so that the checkpoint on disk is always one worth resuming from."""
    floats = [(name, t) for name, t in method.state_dict().items() if isinstance(t, Tensor) and t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in floats]) if floats else torch.ones(0, dtype=torch.bool)
    if not bool(finite.all()):
        bad = [name for (name, _), ok in zip(floats, finite.tolist()) if not ok]
        raise TrainingError(
            f"{method_name}: non-finite values in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} at {position.describe()}; {_kept(last_saved, path)}"
        )


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
