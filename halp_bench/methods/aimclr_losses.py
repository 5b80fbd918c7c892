"""AimCLR's terms as pure functions (field_methods.md §6.3-6.4): the energy-based attention-guided
drop (EADM) and the dual distributional divergence (D3M); its nearest-neighbour mining uses the
mining helpers CrosSCLR shares (components.py).

They follow the official code where the paper is silent: EADM drops the features whose attention
is at least `keep_prob` (high energy = informative, so the drop makes the view harder), its second
mask is element-wise over (C, T, V), and both rescalings count the kept entries over the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def simam_attention(x: Tensor, e_lambda: float) -> Tensor:
    """SimAM's parameter-free attention of a feature map x (NM, C, T, V): sigmoid of the inverse
    energy E = (x - mu)^2 / (4 (sigma^2 + lambda)) + 1/2, with mu and sigma^2 (unbiased) per sample
    and channel over (T, V). Values lie in [sigmoid(1/2), 1)."""
    t, v = x.shape[2:]
    d = (x - x.mean(dim=(2, 3), keepdim=True)).square()
    energy = d / (4.0 * (d.sum(dim=(2, 3), keepdim=True) / (t * v - 1) + e_lambda)) + 0.5
    return torch.sigmoid(energy)


def _rescaled(x: Tensor, keep: Tensor) -> Tensor:
    """x * keep, scaled by (entries of `keep`) / (kept entries) over the whole batch, as dropout
    rescales; a batch with nothing kept stays zero (the official code would divide by zero)."""
    keep = keep.to(x.dtype)
    return x * keep * (keep.numel() / keep.sum().clamp(min=1.0))


def attention_drop(x: Tensor, keep_prob: float = 0.7, e_lambda: float = 1e-4) -> Tensor:
    """EADM on a feature map x (NM, C, T, V): drop joints whose attention, averaged over (C, T), is
    >= keep_prob; then drop the single entries whose attention (of the original x) is >= keep_prob.
    Each step rescales by the batch-global fraction kept. The masks carry no gradient."""
    attention = simam_attention(x, e_lambda).detach()
    joints_kept = attention.mean(dim=(1, 2)) < keep_prob  # (NM, V)
    x = _rescaled(x, joints_kept[:, None, None, :])
    return _rescaled(x, attention < keep_prob)


def moco_logits(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """(N, 1+K) logits [q.k, q.queue] / T with the positive at index 0; q, k (N, D), queue (K, D)."""
    return torch.cat([(q * k).sum(dim=1, keepdim=True), q @ queue.t()], dim=1) / temperature


def d3m_loss(target_logits: Tensor, logits: Tensor) -> Tensor:
    """Cross-entropy from the (detached) normal view's distribution softmax(target_logits) to
    softmax(logits) of an extreme view, over the 1+K entries, batch mean (= KL + the target's
    entropy, so only the extreme branch is pulled)."""
    target = F.softmax(target_logits.detach(), dim=1)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
