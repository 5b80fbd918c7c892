"""One pretraining loop for every method: SGD with step decay, augmentation on the device,
a progress bar with loss and ETA, atomic checkpoints, resume, time per epoch and peak memory."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from halp_bench.config import RunConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.datasets.transforms import pretrain_view
from halp_bench.engine.checkpoint import load_checkpoint, save_checkpoint
from halp_bench.engine.loader import BatchLoader
from halp_bench.engine.meters import PeakMemory, Stopwatch
from halp_bench.engine.progress import progress_bar
from halp_bench.errors import CheckpointError, TrainingError
from halp_bench.methods.base import Batch, Method, check_finite

CHECKPOINT_FORMAT = 1
# Settings that change what pretraining computes; a checkpoint made with others is not resumed.
PRETRAIN_SECTIONS = ("seed", "encoder", "data", "augment", "method", "pretrain")


@dataclass
class PretrainResult:
    epochs: int
    epoch_times: list[float] = field(default_factory=list)  # seconds of training per epoch
    losses: list[dict[str, float]] = field(default_factory=list)  # mean of each loss per epoch
    peak_mb: float = 0.0
    increase_mb: float = 0.0
    resumed_from: int = 0  # epochs already done when this call started

    @property
    def time_per_epoch(self) -> float:
        return sum(self.epoch_times) / len(self.epoch_times) if self.epoch_times else 0.0


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
) -> PretrainResult:
    """Train `method` on `train` for `cfg.pretrain.epochs`, resuming from `run_dir/checkpoint.pt`.

    The checkpoint (written every `cfg.checkpoint_every` epochs and at the end) holds the method's
    state (networks, queues, prototypes), optimiser, scheduler, generators and the history.
    `on_epoch_end(epoch)` (1-based) runs after each epoch's log and checkpoint, outside the timed
    part, e.g. the runner's kNN monitor; it must not draw from the training generators.
    """
    epochs = cfg.pretrain.epochs
    result = PretrainResult(epochs=epochs)
    method.to(device)
    optimizer, scheduler = make_optimizer(method, cfg)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    augment_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    ckpt_path = run_dir / "checkpoint.pt"
    start_epoch = 0
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        check_compatible(state, method_name, cfg, ckpt_path)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        shuffle_gen.set_state(state["shuffle_rng"])
        augment_gen.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = int(state["epoch"])
        result.epoch_times = list(state["history"]["epoch_times"])
        result.losses = [dict(d) for d in state["history"]["losses"]]
        result.resumed_from = start_epoch
        if start_epoch < epochs:
            say(f"resuming {method_name} from epoch {start_epoch} of {epochs} ({ckpt_path})")

    loader = BatchLoader(train, cfg.pretrain.batch_size, device, shuffle=True, drop_last=True, generator=shuffle_gen)
    frames = cfg.data.frames
    watch = Stopwatch(device)
    with PeakMemory(device) as memory, progress_bar(show_progress) as bar:
        task = bar.add_task(f"pretrain {method_name}", total=(epochs - start_epoch) * len(loader))
        for epoch in range(start_epoch, epochs):
            method.train()
            sums: dict[str, torch.Tensor] = {}
            watch.start()
            for iteration, (x, lengths, _) in enumerate(loader):
                batch = Batch(
                    view_q=pretrain_view(x, lengths, frames, cfg.augment, augment_gen),
                    view_k=pretrain_view(x, lengths, frames, cfg.augment, augment_gen),
                    epoch=epoch,
                    iteration=iteration,
                )
                losses = method.training_step(batch)
                try:
                    check_finite(losses)
                except FloatingPointError as exc:
                    raise TrainingError(
                        f"{method_name}: {exc} at epoch {epoch + 1}, iteration {iteration}; "
                        f"the last good checkpoint is kept at {ckpt_path}"
                    ) from None
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimizer.step()
                for name, value in losses.items():  # summed on the device: no sync per step
                    sums[name] = sums[name] + value.detach() if name in sums else value.detach().clone()
                text = f"loss {float(losses['loss'].detach()):.3f}" if iteration % 20 == 0 else None
                bar.update(task, advance=1, **({"description": f"pretrain {method_name} ep {epoch + 1}/{epochs} {text}"} if text else {}))
            scheduler.step()
            result.epoch_times.append(watch.elapsed())
            result.losses.append({k: float(v) / max(len(loader), 1) for k, v in sums.items()})
            append_log(run_dir / "log.csv", epoch + 1, result.epoch_times[-1], result.losses[-1])
            if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == epochs:
                save_checkpoint(
                    {
                        "format": CHECKPOINT_FORMAT,
                        "method": method_name,
                        "config": pretrain_signature(cfg),
                        "epoch": epoch + 1,
                        "model": method.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "shuffle_rng": shuffle_gen.get_state(),
                        "augment_rng": augment_gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "history": {"epoch_times": result.epoch_times, "losses": result.losses},
                    },
                    ckpt_path,
                )
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
    result.peak_mb, result.increase_mb = memory.peak_mb, memory.increase_mb
    return result


def check_compatible(state: dict[str, Any], method_name: str, cfg: RunConfig, path: Path) -> None:
    """Refuse to resume a checkpoint made by another method or with other pretraining settings."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT}")
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
    if not isinstance(ours["seed"], dict) and theirs.get("seed") != ours["seed"]:
        diffs.append(f"seed: checkpoint {theirs.get('seed')} vs now {ours['seed']}")
    if diffs:
        raise CheckpointError(path, "was made with other pretraining settings (" + "; ".join(diffs[:4]) + "); use another --out or --force")


def _normalise(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def append_log(path: Path, epoch: int, seconds: float, losses: dict[str, float]) -> None:
    """One CSV row per epoch (epoch, seconds, each loss) for curves and quick inspection."""
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["epoch", "seconds", *losses])
        writer.writerow([epoch, f"{seconds:.4f}", *(f"{v:.6g}" if math.isfinite(v) else v for v in losses.values())])
