"""AimCLR's EADM, D3M and NNM against explicit loops."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from halp_bench.methods.aimclr_losses import attention_drop, d3m_loss, moco_logits
from halp_bench.methods.components import multi_positive_nce, nearest_neighbour_mask


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _eadm_loop(x: list, keep_prob: float, lam: float) -> list:
    """EADM written element by element from the formulas (field_methods.md §6.3)."""
    nm, c, t, v = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    att = [[[[0.0] * v for _ in range(t)] for _ in range(c)] for _ in range(nm)]
    for n in range(nm):
        for ch in range(c):
            values = [x[n][ch][i][j] for i in range(t) for j in range(v)]
            mu = sum(values) / len(values)
            var = sum((a - mu) ** 2 for a in values) / (t * v - 1)
            for i in range(t):
                for j in range(v):
                    att[n][ch][i][j] = _sigmoid((x[n][ch][i][j] - mu) ** 2 / (4 * (var + lam)) + 0.5)
    joint_keep = [[1.0 if sum(att[n][ch][i][j] for ch in range(c) for i in range(t)) / (c * t) < keep_prob else 0.0 for j in range(v)] for n in range(nm)]
    scale1 = nm * v / sum(map(sum, joint_keep))
    kept = sum(1.0 for n in range(nm) for ch in range(c) for i in range(t) for j in range(v) if att[n][ch][i][j] < keep_prob)
    scale2 = nm * c * t * v / kept
    return [
        [
            [[x[n][ch][i][j] * joint_keep[n][j] * scale1 * (1.0 if att[n][ch][i][j] < keep_prob else 0.0) * scale2 for j in range(v)] for i in range(t)]
            for ch in range(c)
        ]
        for n in range(nm)
    ]


def test_attention_drop_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    x[0, :, :, 2] += 4.0  # an outlying joint: its attention is high in every channel and frame, so it is dropped
    out = attention_drop(x, 0.7, 1e-4)
    expected = torch.tensor(_eadm_loop(x.tolist(), 0.7, 1e-4), dtype=torch.float64)
    assert torch.allclose(out, expected, atol=1e-12)
    assert (out[0, :, :, 2] == 0).all()  # the joint drop happened
    assert (out == 0).sum() > 3 * 4  # ...and element drops elsewhere
    assert (out != 0).any()


def test_attention_drop_passes_gradients_through_kept_entries():
    x = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = attention_drop(x)
    out.sum().backward()
    kept = out.detach() != 0
    assert (x.grad[kept] > 0).all() and (x.grad[~kept] == 0).all()


def test_d3m_is_the_cross_entropy_from_the_normal_distribution():
    g = torch.Generator().manual_seed(2)
    target, logits = torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64)
    total = 0.0
    for n in range(3):
        z_t = sum(math.exp(a) for a in target[n].tolist())
        z = sum(math.exp(a) for a in logits[n].tolist())
        total += -sum(math.exp(a) / z_t * (b - math.log(z)) for a, b in zip(target[n].tolist(), logits[n].tolist()))
    assert abs(float(d3m_loss(target, logits)) - total / 3) < 1e-12


def test_d3m_sends_no_gradient_to_the_target():
    target = torch.randn(3, 6, requires_grad=True)
    logits = torch.randn(3, 6, requires_grad=True)
    d3m_loss(target, logits).backward()
    assert target.grad is None and logits.grad is not None


def test_nearest_neighbour_mask_is_the_union_of_top_k():
    g = torch.Generator().manual_seed(3)
    sims = [torch.randn(4, 10, generator=g) for _ in range(3)]
    mask = nearest_neighbour_mask(sims, topk=2)
    for n in range(4):
        expected = set()
        for s in sims:
            row = s[n].tolist()
            expected |= set(sorted(range(10), key=lambda i: -row[i])[:2])
        assert set(torch.nonzero(mask[n]).flatten().tolist()) == expected
    assert (mask.sum(dim=1) > 2).any()  # the views disagree somewhere: a real union


def test_multi_positive_nce_matches_a_loop():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 7, generator=g, dtype=torch.float64)
    positives = torch.zeros(3, 6, dtype=torch.bool)
    positives[0, 1] = positives[0, 4] = positives[2, 0] = True
    total = 0.0
    for n in range(3):
        row = logits[n].tolist()
        log_z = math.log(sum(math.exp(a) for a in row))
        chosen = [0] + [1 + i for i in range(6) if positives[n, i]]
        total += -sum(row[i] - log_z for i in chosen) / len(chosen)
    assert abs(float(multi_positive_nce(logits, positives)) - total / 3) < 1e-12
    none = torch.zeros(3, 6, dtype=torch.bool)
    assert torch.allclose(multi_positive_nce(logits, none), F.cross_entropy(logits, torch.zeros(3, dtype=torch.long)))


def test_moco_logits_put_the_key_first():
    g = torch.Generator().manual_seed(5)
    q, k, queue = (F.normalize(torch.randn(n, 4, generator=g), dim=1) for n in (2, 2, 5))
    logits = moco_logits(q, k, queue, 0.5)
    assert logits.shape == (2, 6)
    assert torch.allclose(logits[:, 0], (q * k).sum(1) / 0.5) and torch.allclose(logits[1, 3], q[1] @ queue[2] / 0.5)
