"""MoCo's shuffle BN (He et al., CVPR 2020, §3.3) in one process.

With BatchNorm, a query and its positive key are normalised by statistics of the same set of
samples; the batch's statistics then mark which keys are this batch's, and the contrastive task
can be solved from that mark instead of from the content. MoCo breaks the link across GPUs: each
GPU normalises its own share, and the keys' samples are shuffled across GPUs. Here the batch is
split into `groups` groups, each normalised alone, and the key encoder sees the samples in a
random order, so a key is normalised with other samples than its query (except with chance
1/groups, as with MoCo's GPUs). `groups` = 1 is one BatchNorm batch: the field's code on one GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def grouped(module: Callable[[Tensor], Tensor], x: Tensor, groups: int) -> Tensor:
    """`module` applied to each of `groups` consecutive slices of the batch (BatchNorm statistics
    per slice), outputs concatenated in the batch's order."""
    if groups <= 1:
        return module(x)
    return torch.cat([module(part) for part in x.chunk(groups)])


def shuffled(module: Callable[[Tensor], Tensor], x: Tensor, groups: int, generator: torch.Generator) -> Tensor:
    """`grouped` over a random permutation of the batch, returned in the batch's order."""
    if groups <= 1:
        return module(x)
    order = torch.randperm(len(x), generator=generator, device=generator.device)
    out = grouped(module, x[order], groups)
    return out[torch.argsort(order)]


def has_batchnorm(module: nn.Module) -> bool:
    """Whether any BatchNorm layer is in `module` (shuffle BN changes nothing without one)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
