"""Training a classifier on an encoder: frozen (linear probe) or as a whole (fine-tuning).

Shared by the linear, transfer and semi-supervised protocols. The final epoch's accuracy is
reported unless `eval.report == "best"` (the official code's best test accuracy over evaluations,
which is optimistic and is marked as such in every table).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halp_bench.common.loop import LoopHooks, TrainLoop
from halp_bench.common.meters import PeakMemory
from halp_bench.common.optim import make_optimizer, make_schedule
from halp_bench.common.precision import Precision
from halp_bench.common.progress import progress_bar
from halp_bench.config import CHOICES, OptimConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.datasets.loader import BatchLoader
from halp_bench.datasets.views.cmd import center_crop_resize, random_crop_resize
from halp_bench.datasets.views.rotation import random_rotation
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError, TrainingError
from halp_bench.protocols.base import Metrics, ProtocolContext, topk_accuracy

REPORT_CHOICES = CHOICES["eval.report"]


def state_fingerprint(module: nn.Module) -> str:
    """A hash of every parameter and buffer (BatchNorm running statistics included)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def new_head(feature_dim: int, num_classes: int, std: float = 0.01) -> nn.Linear:
    """A fresh classifier, weight ~ N(0, std), bias 0 (`eval.head_std`: CMD's 0.01, the ST-GCN family's 0.02)."""
    head = nn.Linear(feature_dim, num_classes)
    nn.init.normal_(head.weight, std=std)
    nn.init.zeros_(head.bias)
    return head


@torch.no_grad()
def test_scores(encoder: Encoder, head: nn.Module, test: SkeletonSubset, ctx: ProtocolContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(class scores (N, classes), labels (N,)) of the test samples in their order."""
    encoder.eval()
    head.eval()
    logits, labels = [], []
    for x, lengths, y in BatchLoader(test, ctx.cfg.eval.batch_size, ctx.device):
        view = center_crop_resize(x, lengths, ctx.cfg.data.frames, ctx.cfg.eval.test_crop)
        logits.append(head(encoder(view)).float())
        labels.append(y)
    return torch.cat(logits), torch.cat(labels)


def evaluate(encoder: Encoder, head: nn.Linear, test: SkeletonSubset, ctx: ProtocolContext) -> dict[str, float]:
    return topk_accuracy(*test_scores(encoder, head, test, ctx))


def train_classifier(
    encoder: Encoder,
    train: SkeletonSubset,
    test: SkeletonSubset,
    optim: OptimConfig,
    ctx: ProtocolContext,
    *,
    finetune: bool,
    label: str,
    scores_out: dict[str, torch.Tensor] | None = None,
    head: nn.Module | None = None,
    param_groups: Callable[[Encoder, nn.Module], list[dict]] | None = None,
    label_smoothing: float = 0.0,
) -> Metrics:
    """Train a new head (and, if `finetune`, a copy of the encoder) and report test accuracy.

    Frozen mode keeps the encoder in eval mode throughout (BatchNorm statistics cannot drift) and
    proves it: the fingerprint of all parameters and buffers must be unchanged afterwards. Training
    runs through the shared loop (common/loop.py) under the run's precision, with the encoder
    compiled when the context asks for it. `ctx.logger` receives, per epoch, `<label>/loss` (mean
    over the epoch), `<label>/lr` (of the epoch's last step), `<label>/epoch_seconds` (training
    only), `<label>/peak_memory_mb` and, when evaluated (`eval.report=best`), `<label>/test_top1`;
    then `<label>/top1` and `top5` of the final epoch (spaces in `label` become underscores).
    Optional: `scores_out` receives the final test class scores and labels (what ensembles fuse),
    `head` (default `new_head`), `param_groups(encoder, head)` when fine-tuning (layer-wise lr
    decay), `label_smoothing`.
    """
    cfg = ctx.cfg
    if cfg.eval.report not in REPORT_CHOICES:
        raise ConfigError(f"eval.report '{cfg.eval.report}': choose one of {', '.join(REPORT_CHOICES)}")
    encoder = copy.deepcopy(encoder).to(ctx.device) if finetune else encoder.to(ctx.device)
    before = None if finetune else state_fingerprint(encoder)
    head = (head if head is not None else new_head(encoder.feature_dim, train.num_classes, cfg.eval.head_std)).to(ctx.device)
    params = list(head.parameters()) + (list(encoder.parameters()) if finetune else [])
    optimizer = make_optimizer(param_groups(encoder, head) if finetune and param_groups else [{"params": params}], optim)
    loader = BatchLoader(train, optim.batch_size, ctx.device, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed + 7))
    hooks = _ClassifierHooks(encoder, head, loader, test, ctx, finetune, label, label_smoothing)
    with _frozen(encoder, not finetune), progress_bar(ctx.show_progress) as bar, loader, PeakMemory(ctx.device) as memory, ctx.compiled(encoder):
        hooks.memory = memory
        loop = TrainLoop(
            optimizer,
            make_schedule(optimizer, optim, len(loader)),
            Precision(cfg.precision, ctx.device),
            ctx.device,
            optim.epochs,
            len(loader),
            bar=bar,
            task=bar.add_task(label, total=optim.epochs * len(loader)),
            label=label,
            show_loss=ctx.show_progress,
        )
        loop.fit(hooks)
        scores, labels = test_scores(encoder, head, test, ctx)
        final = topk_accuracy(scores, labels)
        if scores_out is not None:
            scores_out.update(scores=scores.cpu(), labels=labels.cpu())
        ctx.logger.log({f"{hooks.tag}/top1": final["top1"], f"{hooks.tag}/top5": final["top5"]}, optim.epochs)
    return _metrics(hooks.best if cfg.eval.report == "best" and hooks.best else final, final, optim.epochs, encoder, before)


@contextmanager
def _frozen(encoder: Encoder, frozen: bool) -> Iterator[None]:
    """No gradients for a frozen encoder's parameters during the block (its eval mode is the hooks')."""
    if frozen:
        for p in encoder.parameters():
            p.requires_grad_(False)
    try:
        yield
    finally:
        if frozen:
            for p in encoder.parameters():
                p.requires_grad_(True)


def _metrics(reported: dict[str, float], final: dict[str, float], epochs: int, encoder: Encoder, before: str | None) -> Metrics:
    """The row's metrics; a frozen encoder (`before`: its fingerprint) must be unchanged, and says so."""
    metrics: Metrics = {**reported, "final_top1": final["top1"], "epochs": float(epochs)}
    if before is not None:
        if state_fingerprint(encoder) != before:
            raise RuntimeError("the frozen encoder changed during the linear probe (parameters or BatchNorm statistics)")
        metrics["encoder_frozen_verified"] = 1.0
    return metrics


class _ClassifierHooks(LoopHooks):
    """A classifier's part of the shared loop: random crops (rotated when `eval.train_rotation` > 0),
    cross-entropy through the head (the frozen encoder under no_grad), per-epoch logs, the best-epoch
    evaluation of `eval.report=best`."""

    def __init__(
        self,
        encoder: Encoder,
        head: nn.Module,
        loader: BatchLoader,
        test: SkeletonSubset,
        ctx: ProtocolContext,
        finetune: bool,
        label: str,
        label_smoothing: float = 0.0,
    ):
        self.encoder, self.head, self.loader, self.test, self.ctx = encoder, head, loader, test, ctx
        self.finetune, self.label, self.tag, self.label_smoothing = finetune, label, label.replace(" ", "_"), label_smoothing
        self.crop_gen = torch.Generator(device=ctx.device).manual_seed(ctx.cfg.seed + 8)
        self.best: dict[str, float] | None = None
        self.memory: PeakMemory | None = None

    def batches(self, epoch: int, first_iteration: int) -> Iterable[tuple[Tensor, Tensor, Tensor]]:
        return self.loader

    def before_epoch(self, loop: TrainLoop, epoch: int) -> None:
        self.encoder.train(self.finetune)
        self.head.train()

    def inputs(self, batch: tuple[Tensor, Tensor, Tensor], epoch: int, iteration: int) -> tuple[Tensor, Tensor]:
        x, lengths, y = batch
        frames, crop = self.ctx.cfg.data.frames, (self.ctx.cfg.eval.train_crop_min, self.ctx.cfg.eval.train_crop_max)
        view = random_crop_resize(x, lengths, frames, crop, frames, self.crop_gen)
        rotation = self.ctx.cfg.eval.train_rotation
        return (random_rotation(view, rotation, self.crop_gen, "eval.train_rotation") if rotation > 0 else view), y

    def losses(self, inputs: tuple[Tensor, Tensor], epoch: int, iteration: int) -> dict[str, Tensor]:
        view, y = inputs
        if self.finetune:
            logits = self.head(self.encoder(view))
        else:
            with torch.no_grad():
                feats = self.encoder(view)
            logits = self.head(feats)
        return {"loss": F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)}

    def after_epoch(self, loop: TrainLoop, seconds: float) -> None:
        epoch, cfg = loop.state.epoch + 1, self.ctx.cfg
        loss = loop.epoch_means()["loss"]
        if not math.isfinite(loss):
            raise TrainingError(f"{self.label}: the training loss is not finite at epoch {epoch} (lr {loop.last_lr:g})")
        scalars = {"loss": loss, "lr": loop.last_lr, "epoch_seconds": seconds, "peak_memory_mb": self.memory.peak_mb if self.memory else 0.0}
        if cfg.eval.report == "best" and (epoch % cfg.eval.eval_every == 0 or epoch == loop.epochs):
            acc = evaluate(self.encoder, self.head, self.test, self.ctx)
            scalars["test_top1"] = acc["top1"]
            if self.best is None or acc["top1"] > self.best["top1"]:
                self.best = acc
        self.ctx.logger.log({f"{self.tag}/{key}": value for key, value in scalars.items()}, epoch)
