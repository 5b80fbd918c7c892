"""HaLP's `official` options that follow the authors' code: t* by their single-argument arctan,
prototypes refreshed after the step's loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from conftest import NTU_SPEC, tiny_config
from halp_bench.config import make_config
from halp_bench.hallucination.sphere import authors_pair_step, pair_step
from halp_bench.methods.base import Batch, create_method


def their_max_t(start_point, p0, selected_prototype):
    """generator.py, transcribed: K, omega and max_t for one batch of (z_k, P*, P_sel)."""
    sim_zk_diffP = torch.einsum("bd,bd->b", [start_point, p0 - selected_prototype])
    sim_psel_p0 = torch.einsum("bd,bd->b", [selected_prototype, p0])
    sim_psel_k = torch.einsum("bd,bd->b", [selected_prototype, start_point])
    K = (1 - sim_psel_p0) / (sim_zk_diffP + 1e-8)
    omega = torch.acos(sim_psel_k)
    return (1 / (omega + 1e-8)) * torch.atan(torch.sin(omega) / (K + torch.cos(omega) + 1e-8))


def test_authors_arctan_matches_their_generator_and_differs_where_the_zero_is_past_a_quarter_turn():
    gen = torch.Generator().manual_seed(0)
    z, p_star, p_sel = (F.normalize(torch.randn(4000, 16, generator=gen, dtype=torch.float64), dim=1) for _ in range(3))
    # half of them with P_sel opposite z and P* a little closer to z than P_sel: kappa + cos(omega) < 0
    noise = lambda: 0.3 * torch.randn(2000, 16, generator=gen, dtype=torch.float64)
    p_sel[:2000] = F.normalize(-z[:2000] + noise(), dim=1)
    p_star[:2000] = F.normalize(p_sel[:2000] + 0.4 * z[:2000] + 0.1 * noise(), dim=1)
    cos = (z * p_sel).sum(1)
    sin = (1 - cos.square()).clamp_min(0).sqrt()
    a, gap = (z * (p_star - p_sel)).sum(1), 1 - (p_star * p_sel).sum(1)
    theirs = their_max_t(z, p_star, p_sel)
    torch.testing.assert_close(authors_pair_step(cos, sin, a, gap), theirs, atol=1e-6, rtol=1e-6)
    ours = pair_step(cos, sin, a, gap)
    past = (a > 0) & (gap / a + cos < 0)
    assert past.any() and (theirs[past] < 0).all() and (ours[past] > 0).all()
    same = (a > 0) & (gap / a + cos > 0.1)
    torch.testing.assert_close(ours[same], theirs[same].clamp(0, 1), atol=1e-5, rtol=0)


def _order(method) -> list[str]:
    calls: list[str] = []
    state = method.prototype_states["joint"]
    refresh, positives = state.refresh_if_due, method.stream_positives
    state.refresh_if_due = lambda *a: (calls.append("refresh"), refresh(*a))[1]
    method.stream_positives = lambda *a: (calls.append("positives"), positives(*a))[1]
    x = torch.randn(8, 3, 8, 25, 2)
    for step in range(12):
        method.training_step(Batch(views=(x + 0.01 * torch.randn_like(x), x), epoch=1, iteration=step))
    return calls


def test_prototypes_refresh_after_the_loss_under_official():
    extra = ("method.start_epoch=0", "method.prototype_queue=16", "method.queue_size=64", "method.num_prototypes=4")
    torch.manual_seed(0)
    before = _order(create_method("halp", tiny_config("halp", *extra), NTU_SPEC))
    after = _order(create_method("halp", tiny_config("halp", *extra, "method.refresh_order=after"), NTU_SPEC))
    assert before[before.index("positives") - 1] == "refresh" and after[after.index("positives") + 1] == "refresh"
    official = make_config("official", [], method="halp").method
    assert (official.t_star, official.refresh_order) == ("atan", "after")
