"""What the rest of a pretraining will cost, said early: a paper-size epoch can take hours on a slow
device, and a run that will take days or not fit must be caught in minutes."""

from __future__ import annotations

import time
from collections.abc import Callable

from halp_bench.common.meters import PeakMemory

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
        self.say(f"{self.method_name}: {measured}, peak memory {self.memory.peak_mb:.0f} MB; about {duration} for the {what_left}{self.note()}")
        self.done = True
