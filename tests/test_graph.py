"""ST-GCN's spatial partition against a plain loop transcription of the official algorithm
(papers/field_methods.md §3.1) and the NTU-25 facts the digest derived by running the official code."""

from __future__ import annotations

import math

import pytest
import torch

from halp_bench.encoders.graph import spatial_partition
from halp_bench.skeleton import KINECT_V1_20, NTU25, SkeletonLayout, chain_layout


def loop_partition(layout: SkeletonLayout) -> list[list[list[float]]]:
    """The official steps one by one: hop distances from matrix powers up to max_hop=1 (else inf),
    column normalisation with self-loops, then the per-entry root/close/further comparison."""
    v, c = layout.num_joints, layout.partition_center
    edges = [(i, i) for i in range(v)] + [(a, b) for a, b in layout.bones if a != b]
    adj = [[0.0] * v for _ in range(v)]
    for a, b in edges:
        adj[a][b] = adj[b][a] = 1.0
    hop = [[math.inf] * v for _ in range(v)]
    for d in (1, 0):  # A^1 > 0 -> 1, then A^0 (identity) > 0 -> 0
        for i in range(v):
            for j in range(v):
                if adj[i][j] > 0 if d == 1 else i == j:
                    hop[i][j] = d
    adjacency = [[1.0 if hop[i][j] <= 1 else 0.0 for j in range(v)] for i in range(v)]
    colsum = [sum(adjacency[i][j] for i in range(v)) for j in range(v)]
    norm = [[adjacency[i][j] / colsum[j] for j in range(v)] for i in range(v)]
    out = [[[0.0] * v for _ in range(v)] for _ in range(3)]
    for h in (0, 1):
        for i in range(v):
            for j in range(v):
                if hop[j][i] != h:
                    continue
                if hop[j][c] == hop[i][c]:
                    out[h][j][i] += norm[j][i]  # root: k=0 at hop 0, folded into k=1 at hop 1
                elif hop[j][c] > hop[i][c]:
                    out[1][j][i] += norm[j][i]  # close
                else:
                    out[2][j][i] += norm[j][i]  # further
    return out


@pytest.mark.parametrize("layout", [NTU25, KINECT_V1_20, chain_layout(7)], ids=lambda layout: layout.name)
def test_matches_a_loop_transcription_of_the_official_algorithm(layout):
    assert torch.equal(spatial_partition(layout), torch.tensor(loop_partition(layout)))


def test_ntu25_is_the_graph_the_official_code_builds():
    a = spatial_partition(NTU25)
    assert a.shape == (3, 25, 25) and a.dtype == torch.float32
    assert [int((p != 0).sum()) for p in a] == [25, 40, 8]  # true distances would give 25/24/24
    torch.testing.assert_close(a.sum(dim=(0, 1)), torch.ones(25))  # every column of A·D^-1 sums to 1
    assert torch.equal(a[0], torch.diag(torch.diagonal(a[0])))
    assert a[0, 20, 20].item() == pytest.approx(0.2) and a[0, 0, 0].item() == pytest.approx(0.25)
    further = {(j + 1, i + 1) for j, i in (a[2] != 0).nonzero().tolist()}  # 1-based (row, col)
    assert further == {(21, 2), (21, 3), (21, 5), (21, 9), (2, 1), (3, 4), (5, 6), (9, 10)}
    degree = (spatial_partition(NTU25) != 0).sum(dim=(0, 1))
    assert torch.allclose(a[0].diagonal(), 1 / degree.float())
