"""Everything a pretraining checkpoint holds, written and read back by one object (`TrainingState`), and
where training stands (`Position`): what makes a killed run continue bit for bit."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from halp_bench.common import distributed
from halp_bench.common.loop import LoopState
from halp_bench.common.meters import PeakMemory
from halp_bench.common.optim import Schedule
from halp_bench.common.precision import Precision
from halp_bench.config import RunConfig
from halp_bench.engine.checkpoint import CHECKPOINT_FORMAT
from halp_bench.engine.device import rng_states, set_rng_states
from halp_bench.identity import pretrain_signature
from halp_bench.methods.base import Method


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
class Position(LoopState):
    """Where training stands (the loop's state: epoch, iteration, running loss sums, seconds) and the
    data-order generator before this epoch's permutation: all a checkpoint needs to continue."""

    shuffle_state: Tensor | None = None

    def describe(self) -> str:
        return f"epoch {self.epoch + 1}, iteration {self.iteration}" if self.iteration else f"the end of epoch {self.epoch}"

    def snapshot(self) -> Position:
        """A copy that later training does not change."""
        return replace(self, loss_sums=dict(self.loss_sums))


class TrainingState:
    """Everything a checkpoint holds, written by `state_dict` and read back by `load`."""

    def __init__(
        self,
        method_name: str,
        method: Method,
        cfg: RunConfig,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule,
        precision: Precision,
        shuffle_gen: torch.Generator,
        augment_gen: torch.Generator,
        result: PretrainResult,
    ):
        self.method_name, self.method, self.cfg = method_name, method, cfg
        self.optimizer, self.schedule, self.precision = optimizer, schedule, precision
        self.shuffle_gen, self.augment_gen, self.result = shuffle_gen, augment_gen, result
        self.earlier_peak = self.earlier_increase = 0.0  # memory of the processes that ran earlier parts

    def generators(self) -> dict[str, Any]:
        """This rank's explicit and global generators (each rank has its own augmentation stream)."""
        return {"augment": self.augment_gen.get_state(), "global": rng_states()}

    def state_dict(self, position: Position, ranks: list[dict[str, Any]], memory: PeakMemory) -> dict[str, Any]:
        result = self.result
        return {
            "format": CHECKPOINT_FORMAT,
            "method": self.method_name,
            "config": pretrain_signature(self.method_name, self.cfg),
            "epoch": position.epoch,
            "iteration": position.iteration,
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.scheduler.state_dict(),
            "rng": {"shuffle": position.shuffle_state, **ranks[0]},
            **({"rng_ranks": ranks} if len(ranks) > 1 else {}),
            "grad_scaler": self.precision.state_dict(),
            "epoch_loss_sums": {k: v.detach().cpu() for k, v in position.loss_sums.items()},
            "epoch_seconds": position.seconds,
            "threads": torch.get_num_threads(),  # a deterministic run resumes with it (keep_thread_count)
            "history": {
                "epoch_times": result.epoch_times,
                "losses": result.losses,
                "peak_mb": max(self.earlier_peak, memory.peak_mb),
                "increase_mb": max(self.earlier_increase, memory.increase_mb),
                "compile_seconds": result.compile_seconds,
            },
        }

    def load(self, state: dict[str, Any], device: torch.device, where: distributed.DistInfo) -> Position:
        """Restore everything `state_dict` wrote; return the position to continue from."""
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state["grad_scaler"])
        ranks = state.get("rng_ranks") or [state["rng"]]  # each rank's generators (one in a single process)
        own = ranks[where.rank] if len(ranks) == where.world_size else state["rng"]  # another world size: not bit-exact
        self.augment_gen.set_state(own["augment"])
        set_rng_states(own["global"])
        history = state["history"]
        self.result.epoch_times = list(history["epoch_times"])
        self.result.losses = [dict(d) for d in history["losses"]]
        self.result.compile_seconds = float(history["compile_seconds"])
        self.earlier_peak, self.earlier_increase = float(history["peak_mb"]), float(history["increase_mb"])
        return Position(
            int(state["epoch"]),
            int(state["iteration"]),
            {k: v.to(device) for k, v in state["epoch_loss_sums"].items()},
            float(state["epoch_seconds"]),
            shuffle_state=state["rng"]["shuffle"],
        )
