"""The one training loop of halp-bench: pretraining (engine/pretrain.py) and every classifier
protocol (protocols/classifier.py: linear, transfer, semi-supervised, fine-tune) run their epochs
through `TrainLoop.fit`.

The loop owns what every training phase repeats: the forward under the run's precision (autocast;
a gradient scaler for float16), the optimiser and schedule steps, the losses summed on the device,
the training-time stopwatch and the progress bar. It reads no loss on the host while training: the
progress line reads one every `PROGRESS_EVERY` steps, and only when it is shown. What differs
between phases comes in as hooks (`LoopHooks`): how a batch becomes inputs and losses, a check
before the optimiser step (pretraining stops on a non-finite loss on any rank), what follows a step
(checkpoints every N iterations, the cost estimate) and an epoch (logs, checkpoints, evaluation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from halp_bench.common.meters import Stopwatch
from halp_bench.common.optim import Schedule
from halp_bench.common.precision import Precision

PROGRESS_EVERY = 20  # steps between two loss readings for the progress line (each one syncs the device)


@dataclass
class LoopState:
    """Where the loop stands: the epoch (0-based) and the batches done in it, the running loss sums
    of that epoch (on the device) and its training seconds before the stopwatch's current lap."""

    epoch: int = 0
    iteration: int = 0
    loss_sums: dict[str, Tensor] = field(default_factory=dict)
    seconds: float = 0.0


class LoopHooks:
    """What a training phase adds to the loop; every hook but `losses` does nothing by default."""

    def batches(self, epoch: int, first_iteration: int) -> Iterable[Any]:
        """The epoch's batches from `first_iteration` on."""
        raise NotImplementedError

    def inputs(self, batch: Any, epoch: int, iteration: int) -> Any:
        """What the forward needs, made outside autocast (views, crops)."""
        return batch

    def losses(self, inputs: Any, epoch: int, iteration: int) -> dict[str, Tensor]:
        """The forward under autocast: named losses, `loss` the one minimised."""
        raise NotImplementedError

    def before_epoch(self, loop: TrainLoop, epoch: int) -> None:
        """Train/eval modes and anything drawn before the epoch's batches."""

    def check(self, losses: dict[str, Tensor], epoch: int, iteration: int) -> None:
        """Before the optimiser step; raise to stop (the optimiser has not moved yet)."""

    def after_step(self, loop: TrainLoop, losses: dict[str, Tensor]) -> None:
        """After the step and the loss sums (`loop.state.iteration` counts this batch)."""

    def after_epoch(self, loop: TrainLoop, seconds: float) -> None:
        """After the schedule's epoch step; `seconds` is the epoch's training time."""


class TrainLoop:
    """Epochs of optimiser steps with the given hooks; see the module docstring."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule,
        precision: Precision,
        device: torch.device,
        epochs: int,
        steps_per_epoch: int,
        *,
        bar: Any,
        task: Any,
        label: str,
        show_loss: bool,
    ):
        self.optimizer, self.schedule, self.precision = optimizer, schedule, precision
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.bar, self.task, self.label, self.show_loss = bar, task, label, show_loss
        self.watch = Stopwatch(device)
        self.state = LoopState()
        self.last_lr = 0.0  # of the latest step, before the schedule moves on

    def fit(self, hooks: LoopHooks, start: LoopState | None = None) -> None:
        """Train from `start` (a resumed position) to the last epoch."""
        start = start or LoopState()
        for epoch in range(start.epoch, self.epochs):
            self.state = start if epoch == start.epoch else LoopState(epoch)
            hooks.before_epoch(self, epoch)
            self.watch.start()
            for iteration, batch in enumerate(hooks.batches(epoch, self.state.iteration), start=self.state.iteration):
                losses = self.step(hooks, batch, epoch, iteration)
                for name, value in losses.items():  # summed on the device: no sync per step
                    sums = self.state.loss_sums
                    sums[name] = sums[name] + value.detach() if name in sums else value.detach().clone()
                self.state.iteration = iteration + 1
                self.show(losses, epoch, iteration)
                hooks.after_step(self, losses)
            self.schedule.after_epoch()
            hooks.after_epoch(self, self.state.seconds + self.watch.elapsed())

    def step(self, hooks: LoopHooks, batch: Any, epoch: int, iteration: int) -> dict[str, Tensor]:
        inputs = hooks.inputs(batch, epoch, iteration)
        with self.precision.autocast():
            losses = hooks.losses(inputs, epoch, iteration)
        hooks.check(losses, epoch, iteration)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward_and_step(losses["loss"], self.optimizer)
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.schedule.after_batch()
        return losses

    def show(self, losses: dict[str, Tensor], epoch: int, iteration: int) -> None:
        """Advance the bar; name the loss every PROGRESS_EVERY steps (a device sync) when it is shown."""
        text = {}
        if self.show_loss and iteration % PROGRESS_EVERY == 0:
            text = {"description": f"{self.label} ep {epoch + 1}/{self.epochs} loss {float(losses['loss'].detach()):.3f}"}
        self.bar.update(self.task, advance=1, **text)

    @contextmanager
    def untimed(self) -> Iterator[None]:
        """Work inside the block (a checkpoint write, a compile) is not the epoch's training time."""
        self.state.seconds += self.watch.elapsed()
        try:
            yield
        finally:
            self.watch.start()

    def discard_lap(self) -> float:
        """Drop the time since the stopwatch last started from the epoch (the first, compiling
        step) and return it."""
        seconds = self.watch.elapsed()
        self.watch.start()
        return seconds

    def epoch_means(self, sums: dict[str, Tensor] | None = None) -> dict[str, float]:
        """Mean of each loss over the epoch's batches (one sync)."""
        sums = self.state.loss_sums if sums is None else sums
        return {name: float(value) / max(self.steps_per_epoch, 1) for name, value in sums.items()}
