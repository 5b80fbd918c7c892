"""Training a classifier on an encoder: frozen (linear probe) or as a whole (fine-tuning).

Shared by the linear, transfer and semi-supervised protocols. The final epoch's accuracy is
reported unless `eval.report == "best"` (the official code's best test accuracy over evaluations,
which is optimistic and is marked as such in every table).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from halp_bench.common.meters import PeakMemory, Stopwatch
from halp_bench.common.optim import make_optimizer, make_schedule
from halp_bench.common.progress import progress_bar
from halp_bench.config import CHOICES, OptimConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.datasets.loader import BatchLoader
from halp_bench.datasets.transforms import center_crop_resize, random_crop_resize
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.protocols.base import Metrics, ProtocolContext, topk_accuracy

REPORT_CHOICES = CHOICES["eval.report"]


def state_fingerprint(module: nn.Module) -> str:
    """A hash of every parameter and buffer (BatchNorm running statistics included)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def new_head(feature_dim: int, num_classes: int) -> nn.Linear:
    """A fresh classifier, weight ~ N(0, 0.01), bias 0 (official init)."""
    head = nn.Linear(feature_dim, num_classes)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return head


@torch.no_grad()
def evaluate(encoder: Encoder, head: nn.Module, test: SkeletonSubset, ctx: ProtocolContext) -> dict[str, float]:
    encoder.eval()
    head.eval()
    logits, labels = [], []
    for x, lengths, y in BatchLoader(test, ctx.cfg.eval.batch_size, ctx.device):
        view = center_crop_resize(x, lengths, ctx.cfg.data.frames, ctx.cfg.eval.test_crop)
        logits.append(head(encoder(view)).float())
        labels.append(y)
    return topk_accuracy(torch.cat(logits), torch.cat(labels))


def train_classifier(
    encoder: Encoder,
    train: SkeletonSubset,
    test: SkeletonSubset,
    optim: OptimConfig,
    ctx: ProtocolContext,
    *,
    finetune: bool,
    label: str,
    head: nn.Module | None = None,
    param_groups: Callable[[Encoder, nn.Module], list[dict]] | None = None,
    label_smoothing: float = 0.0,
) -> Metrics:
    """Train a new head (and, if `finetune`, a copy of the encoder) and report test accuracy.

    Frozen mode keeps the encoder in eval mode throughout (BatchNorm statistics cannot drift) and
    proves it: the fingerprint of all parameters and buffers must be unchanged afterwards.
    `ctx.logger` receives, per epoch, `<label>/loss` (mean over the epoch), `<label>/lr` (of the
    epoch's last step), `<label>/epoch_seconds` (training only), `<label>/peak_memory_mb` and, when
    evaluated (`eval.report=best`), `<label>/test_top1`; then `<label>/top1` and `top5` of the final
    epoch (spaces in `label` become underscores).
    Optional: `head` (default `new_head`, a linear layer on the feature), `param_groups(encoder,
    head)` for the optimiser when fine-tuning (e.g. layer-wise lr decay), `label_smoothing`.
    """
    cfg = ctx.cfg
    if cfg.eval.report not in REPORT_CHOICES:
        raise ConfigError(f"eval.report '{cfg.eval.report}': choose one of {', '.join(REPORT_CHOICES)}")
    encoder = copy.deepcopy(encoder).to(ctx.device) if finetune else encoder.to(ctx.device)
    before = None if finetune else state_fingerprint(encoder)
    head = (head if head is not None else new_head(encoder.feature_dim, train.num_classes)).to(ctx.device)
    params = list(head.parameters()) + (list(encoder.parameters()) if finetune else [])
    if not finetune:
        for p in encoder.parameters():
            p.requires_grad_(False)
    optimizer = make_optimizer(param_groups(encoder, head) if finetune and param_groups else [{"params": params}], optim)
    generator = torch.Generator().manual_seed(cfg.seed + 7)
    crop_gen = torch.Generator(device=ctx.device).manual_seed(cfg.seed + 8)
    loader = BatchLoader(train, optim.batch_size, ctx.device, shuffle=True, generator=generator)
    schedule = make_schedule(optimizer, optim, len(loader))
    best: dict[str, float] | None = None
    final: dict[str, float] = {}
    tag = label.replace(" ", "_")
    watch = Stopwatch(ctx.device)
    try:
        with progress_bar(ctx.show_progress) as bar, loader, PeakMemory(ctx.device) as memory:
            task = bar.add_task(label, total=optim.epochs * len(loader))
            for epoch in range(optim.epochs):
                encoder.train(finetune)
                head.train()
                watch.start()
                loss_sum, lr = 0.0, 0.0
                for x, lengths, y in loader:
                    view = random_crop_resize(
                        x, lengths, cfg.data.frames, (cfg.eval.train_crop_min, cfg.eval.train_crop_max), cfg.data.frames, crop_gen
                    )
                    if finetune:
                        logits = head(encoder(view))
                    else:
                        with torch.no_grad():
                            feats = encoder(view)
                        logits = head(feats)
                    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    lr = optimizer.param_groups[0]["lr"]
                    schedule.after_batch()
                    loss_value = loss.item()
                    loss_sum += loss_value
                    bar.update(task, advance=1, description=f"{label} ep {epoch + 1}/{optim.epochs} loss {loss_value:.3f}")
                schedule.after_epoch()
                scalars = {"loss": loss_sum / max(len(loader), 1), "lr": lr, "epoch_seconds": watch.elapsed(), "peak_memory_mb": memory.peak_mb}
                last = epoch + 1 == optim.epochs
                if cfg.eval.report == "best" and ((epoch + 1) % cfg.eval.eval_every == 0 or last):
                    acc = evaluate(encoder, head, test, ctx)
                    scalars["test_top1"] = acc["top1"]
                    if best is None or acc["top1"] > best["top1"]:
                        best = acc
                ctx.logger.log({f"{tag}/{key}": value for key, value in scalars.items()}, epoch + 1)
            final = evaluate(encoder, head, test, ctx)
            ctx.logger.log({f"{tag}/top1": final["top1"], f"{tag}/top5": final["top5"]}, optim.epochs)
    finally:
        if not finetune:
            for p in encoder.parameters():
                p.requires_grad_(True)
    metrics: Metrics = dict(best if cfg.eval.report == "best" and best else final)
    metrics["final_top1"] = final["top1"]
    metrics["epochs"] = float(optim.epochs)
    if before is not None:
        if state_fingerprint(encoder) != before:
            raise RuntimeError("the frozen encoder changed during the linear probe (parameters or BatchNorm statistics)")
        metrics["encoder_frozen_verified"] = 1.0
    return metrics
