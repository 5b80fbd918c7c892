"""ST-GCN's `spatial` adjacency partition, as the official graph code builds it (papers/field_methods.md §3.1).

The official code (strategy 'spatial', max_hop=1) knows only hop distances 0 and 1: every other pair is
`inf` apart, so a neighbour pair whose ends are both beyond the centre's neighbours compares inf == inf
and falls into the "root" group with the self-loops' group, not into "closer"/"further". That gives
25/40/8 non-zeros on NTU-25 (true distances would give 25/24/24), and the released checkpoints carry that
matrix, so it is reproduced here exactly. The adjacency (with self-loops) is column-normalised, A·D^-1,
before it is split.
"""

from __future__ import annotations

import torch
from torch import Tensor

from halp_bench.skeleton import SkeletonLayout


def spatial_partition(layout: SkeletonLayout) -> Tensor:
    """(3, V, V) float32, entry [k, j, i] weighing joint j's message to joint i (the official conv's
    einsum 'kvw'): k=0 self-loops; k=1 neighbours j at least as far from the centre as i (the official
    'root' + 'close'); k=2 neighbours j nearer the centre than i (the official 'further')."""
    v = layout.num_joints
    linked = torch.eye(v, dtype=torch.bool)
    for joint, partner in layout.bones:
        if joint != partner:
            linked[joint, partner] = linked[partner, joint] = True
    hop = torch.full((v, v), torch.inf)
    hop[linked] = 1.0
    hop.fill_diagonal_(0.0)
    normalised = linked.double() / linked.double().sum(dim=0, keepdim=True)  # A · D^-1, D = column sums with the self-loop
    to_center = hop[:, layout.partition_center]
    neighbours = hop == 1
    not_nearer = to_center[:, None] >= to_center[None, :]  # [j, i]: hop(j, c) >= hop(i, c); inf >= inf holds
    root = torch.diag(torch.diagonal(normalised))
    close = torch.where(neighbours & not_nearer, normalised, 0.0)
    further = torch.where(neighbours & ~not_nearer, normalised, 0.0)
    return torch.stack([root, close, further]).float()
