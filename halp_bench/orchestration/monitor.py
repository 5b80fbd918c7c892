"""The kNN monitor of a pretraining: how well the features separate the classes as training goes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from halp_bench.common import distributed
from halp_bench.common.loggers import RunLogger
from halp_bench.config import RunConfig
from halp_bench.methods.base import Method
from halp_bench.orchestration.stages import Stage
from halp_bench.protocols.base import ProtocolContext
from halp_bench.registry import PROTOCOLS


def knn_monitor(method: Method, stage: Stage, cfg: RunConfig, device: torch.device, path: Path, logger: RunLogger | None = None) -> Callable[[int], None]:
    """An `on_epoch_end` hook: kNN top-1 on the pretraining split every `eval.monitor_every` epochs,
    appended to `path` (epoch, knn_top1), like the official code's monitor, and logged as
    `pretrain/knn_top1`. A resumed run may repeat an epoch; readers keep its last row."""
    logger = logger or RunLogger()
    ctx = ProtocolContext(cfg=cfg, device=device, show_progress=False)

    def check(epoch: int) -> None:
        if epoch % cfg.eval.monitor_every == 0 and distributed.info().is_main:
            top1 = PROTOCOLS.get("knn")(method.encoder_for_eval(), stage.train, stage.test, ctx)["top1"]
            new = not path.exists()
            with path.open("a") as handle:
                handle.write(("epoch,knn_top1\n" if new else "") + f"{epoch},{top1:.4f}\n")
            logger.log({"pretrain/knn_top1": top1}, epoch)

    return check
