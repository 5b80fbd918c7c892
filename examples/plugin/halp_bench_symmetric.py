"""An external halp-bench method in one file: MoCo with a symmetrised loss.

Both views serve once as query and once as key (as in MoCo v3 / SimCLR-style training), so every
sample contributes two InfoNCE terms per step. It keeps MoCo's settings (`--set method.*` as for
`moco`). Installed as its own package, it is found through the `halp_bench.methods` entry-point
group (see pyproject.toml beside this file).
"""

from __future__ import annotations

import torch
from torch import Tensor

from halp_bench.methods.base import Batch
from halp_bench.methods.components import info_nce
from halp_bench.methods.moco import MoCo
from halp_bench.registry import register_method


@register_method("moco_symmetric", "MoCo v2 with a symmetrised loss (example plugin)")
class SymmetricMoCo(MoCo):
    compared_to = "moco"  # tables pair it with moco where both ran under the same settings

    def training_step(self, batch: Batch) -> dict[str, Tensor]:  # the engine has moved the key encoders (MoCo's momentum_pairs)
        view_a, view_b = batch.views
        (q1, k1), (q2, k2) = self.embed(view_a, view_b), self.embed(view_b, view_a)
        negatives = self.queue.read()
        t = self.settings.temperature
        loss = 0.5 * (info_nce(q1["joint"], k1["joint"], negatives, t) + info_nce(q2["joint"], k2["joint"], negatives, t))
        self.queue.push(torch.cat([k1["joint"], k2["joint"]]))
        return {"contrastive_joint": loss, "loss": loss}
