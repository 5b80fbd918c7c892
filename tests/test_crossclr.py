"""CrosSCLR: the mined mask and loss against a plain loop (field_methods.md §5.3), the phase switch,
and the two official-code options (shared heads, motion-only EMA)."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import NTU_SPEC, tiny_config
from halp_bench.config import make_config
from halp_bench.datasets.views.clr import relative_to_joint
from halp_bench.errors import ConfigError
from halp_bench.methods.base import Batch, create_method
from halp_bench.methods.components import nearest_neighbour_mask
from halp_bench.methods.crossclr import cross_view_losses
from halp_bench.methods.stream_encoders import StreamEncoder
from halp_bench.registry import METHODS

STREAMS = ("joint", "motion", "bone")


def _loop_loss(pos: list[float], neg: list[list[float]], partner: list[list[float]], topk: int, t: float, context: bool) -> list[float]:
    """Per sample, from the description: logits [pos, neg, neg*partner] / T; positives: index 0 and
    the partner's top-k slots in both queue blocks; loss = mean over positives of -log softmax."""
    out = []
    for n in range(len(pos)):
        k = len(neg[n])
        top = sorted(range(k), key=lambda j: -partner[n][j])[:topk]
        logits = [pos[n], *neg[n], *([neg[n][j] * partner[n][j] for j in range(k)] if context else [])]
        logits = [v / t for v in logits]
        peak = max(logits)
        log_z = peak + math.log(sum(math.exp(v - peak) for v in logits))
        chosen = [0, *(1 + j for j in top), *((1 + k + j for j in top) if context else ())]
        out.append(-sum(logits[i] - log_z for i in chosen) / len(chosen))
    return out


def test_the_mined_mask_marks_the_partners_top_k_slots():
    sims = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    for topk in (1, 3):
        mask = nearest_neighbour_mask([sims], topk)  # the partner's similarities alone
        for n in range(6):
            top = sorted(range(10), key=lambda j: -float(sims[n, j]))[:topk]
            assert mask[n].tolist() == [j in top for j in range(10)]


@pytest.mark.parametrize("topk, context", [(1, True), (2, True), (1, False)])
def test_cross_view_losses_match_the_loop(topk, context):
    g = torch.Generator().manual_seed(1)
    pos = {s: torch.rand(5, generator=g, dtype=torch.float64) * 2 - 1 for s in STREAMS}
    neg = {s: torch.rand(5, 12, generator=g, dtype=torch.float64) * 2 - 1 for s in STREAMS}
    losses = cross_view_losses(pos, neg, topk, 0.07, context)
    for a in STREAMS:
        per_partner = [_loop_loss(pos[a].tolist(), neg[a].tolist(), neg[b].tolist(), topk, 0.07, context) for b in STREAMS if b != a]
        expected = sum((x + y) / 2 for x, y in zip(*per_partner)) / 5
        assert math.isclose(float(losses[a]), expected, rel_tol=1e-10), a


def _method(*more: str):
    torch.manual_seed(0)
    return create_method("crossclr", tiny_config("crossclr", "method.cross_epoch=2", *more), NTU_SPEC)


def _batch(method, epoch: int) -> Batch:
    x, lengths = torch.randn(8, 3, 12, 25, 2, generator=torch.Generator().manual_seed(epoch)), torch.full((8,), 12)
    return Batch(method.make_views(x, lengths, torch.Generator().manual_seed(epoch)), epoch=epoch, iteration=0)


def test_mining_starts_when_the_one_based_epoch_exceeds_cross_epoch():
    method = _method()
    assert sorted(method.training_step(_batch(method, 1))) == ["contrastive_bone", "contrastive_joint", "contrastive_motion", "loss"]
    # 0-based epoch 2 is the official code's epoch 3 > cross_epoch 2
    q_views = _batch(method, 2)
    queues = [method.queue.read(i) for i in range(3)]
    losses = method.training_step(q_views)
    assert sorted(losses) == ["loss", "mined_bone", "mined_joint", "mined_motion"]
    # the method's mined losses are cross_view_losses of its embeddings against the pre-push queues
    with torch.no_grad():
        q = {s: method.encoders_q[s](v) for s, v in zip(STREAMS, _stream_views(method, q_views.views[0]))}
        k = {s: method.encoders_k[s](v) for s, v in zip(STREAMS, _stream_views(method, q_views.views[1]))}
    expected = cross_view_losses({s: (q[s] * k[s]).sum(1) for s in STREAMS}, {s: q[s] @ queues[i].t() for i, s in enumerate(STREAMS)}, 1, 0.07, True)
    for s in STREAMS:
        assert torch.allclose(losses[f"mined_{s}"], expected[s], atol=1e-5)


def _stream_views(method, view):
    from halp_bench.datasets.views.modalities import modality

    return [modality(view, s, method.data.layout) for s in STREAMS]


def _key_params(method, stream: str) -> list[torch.Tensor]:
    return [p.detach().clone() for p in method.encoders_k[stream].encoder.parameters()]


@pytest.mark.parametrize("motion_only", [False, True])
def test_motion_only_ema_freezes_the_other_key_encoders_in_the_mining_phase(motion_only):
    method = _method(f"method.motion_only_ema={motion_only}")
    for p in method.encoders_q.parameters():
        p.data.add_(1.0)  # so that every EMA step moves its key encoder
    for epoch, mining in ((1, False), (2, True)):
        before = {s: _key_params(method, s) for s in STREAMS}
        method.step_momentum_targets(_batch(method, epoch))
        for s in STREAMS:
            moved = any(not torch.equal(a, b) for a, b in zip(before[s], _key_params(method, s)))
            assert moved == (s == "motion" or not (motion_only and mining)), (epoch, s)


@pytest.mark.parametrize("independent", [False, True])
def test_shared_heads_reuse_the_joint_head_as_the_tail_and_round_trip(independent):
    method = _method("method.shared_head=true", "method.proj_hidden=24", f"method.independent_key_init={independent}")
    width = method.encoders_q["joint"].encoder.feature_dim
    for encoders in (method.encoders_q, method.encoders_k):
        joint = encoders["joint"].head
        for s in ("motion", "bone"):
            head = encoders[s].head
            assert len([m for m in head.modules() if isinstance(m, torch.nn.Linear)]) == 3 and head[2] is joint
            assert head[0].weight.shape == (width, width)  # Linear(F, F), then the joint head F -> 24 -> out
    for s in ("motion", "bone"):
        assert torch.equal(method.encoders_q[s].head[0].weight, method.encoders_k[s].head[0].weight) != independent
    assert method.training_step(_batch(method, 2))["loss"].isfinite()
    assert not any(p.requires_grad for p in method.encoders_k.parameters())
    tail_q, tail_k = method.encoders_q["joint"].head[0].weight, method.encoders_k["joint"].head[0].weight
    with torch.no_grad():
        tail_q.add_(1.0)
    start, m = tail_k.clone(), method.settings.momentum
    method.step_momentum_targets(_batch(method, 0))  # the shared tail follows once per stream: m^3
    assert torch.allclose(tail_k, m**3 * start + (1 - m**3) * tail_q, atol=1e-6)
    clone = _method("method.shared_head=true", "method.proj_hidden=24", f"method.independent_key_init={independent}")
    clone.load_state_dict(method.state_dict())
    assert clone.encoders_k["motion"].head[2] is clone.encoders_k["joint"].head
    assert torch.equal(clone.encoders_k["bone"].head[2][0].weight, tail_k)


def test_presets_and_settings():
    official = METHODS.get("crossclr").settings_class.for_preset("official")
    assert (official.shared_head, official.motion_only_ema, official.independent_key_init) == (True, True, True)
    assert (official.topk, official.cross_epoch, official.context, official.queue_size) == (1, 150, True, 32768)
    paper = METHODS.get("crossclr").settings_class.for_preset("paper")
    assert not (paper.shared_head or paper.motion_only_ema or paper.independent_key_init)
    assert make_config("cpu", method="crossclr").method.cross_epoch == 30
    b = METHODS.get("crossclr_b").settings_class.for_preset("official")
    assert (b.queue_size, b.proj_hidden, b.cross_epoch, b.shared_head, b.motion_only_ema) == (16384, 2048, 225, False, False)
    assert METHODS.get("crossclr").defaults_for("paper")["encoder.name"] == "stgcn"
    assert "encoder.name" not in METHODS.get("crossclr_b").defaults_for("paper")
    assert METHODS.get("crossclr").compared_to == "skeletonclr" and METHODS.get("crossclr_b").compared_to == "moco"
    with pytest.raises(ConfigError, match="method.topk=0"):
        make_config("cpu", ["method.topk=0"], method="crossclr")


def test_eval_reads_one_stream_or_the_ensemble():
    x = torch.randn(2, 3, 8, 25, 2)
    motion = create_method("crossclr_b", tiny_config("crossclr_b", "eval.stream=motion"), NTU_SPEC).eval()
    expected = motion.encoders_q["motion"].encoder(_stream_views(motion, x)[1])
    assert torch.allclose(motion.encoder_for_eval()(x), expected)
    ensemble = create_method("crossclr", tiny_config("crossclr", "eval.stream=ensemble"), NTU_SPEC).encoder_for_eval()
    assert len(ensemble.encoder.streams) == 3 and ensemble(x).shape == (2, ensemble.feature_dim)  # inside the relative input


def test_concat_probe_is_the_mean_of_one_linear_head_per_stream():
    """A linear head on the concatenated streams computes what CrosSCLR's three-stream probe does:
    the mean of three heads' logits (their biases summed into one); it is crossclr's stream under
    its recipe, and --common-protocol gives it the preset's single stream back."""
    method = create_method("crossclr", tiny_config("crossclr", "eval.stream=concat"), NTU_SPEC).eval()
    encoder = method.encoder_for_eval()
    x = torch.randn(4, 3, 8, 25, 2)
    torch.manual_seed(0)
    heads = {s: torch.nn.Linear(method.encoders_q[s].encoder.feature_dim, 5) for s in ("joint", "motion", "bone")}
    with torch.no_grad():
        features = {s: StreamEncoder(method.encoders_q[s].encoder, s, NTU_SPEC.layout)(relative_to_joint(x, 20)) for s in heads}
        mean_logits = torch.stack([heads[s](features[s]) for s in heads]).mean(dim=0)
        weight = torch.cat([heads[s].weight for s in heads], dim=1)
        bias = torch.stack([heads[s].bias for s in heads]).mean(dim=0)
        torch.testing.assert_close(encoder(x) @ weight.t() + bias, mean_logits, atol=1e-5, rtol=0)
    assert make_config("paper", [], method="crossclr").eval.stream == "concat"
    assert make_config("paper", ["eval.protocol=common"], method="crossclr").eval.stream == "joint"
