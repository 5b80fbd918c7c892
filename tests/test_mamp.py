"""MAMP's masking, target and loss against independent per-token loops, the motion-aware bias
against its e^(1/tau) bound, the per-step generators of `Batch`, and MAMP's views."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import NTU_SPEC, random_skeletons, tiny_config
from halp_bench.methods import masking
from halp_bench.methods.base import Batch, create_method
from halp_bench.methods.mamp_views import translate_by_first_frame


def _loop_patchify(x: torch.Tensor, u: int) -> torch.Tensor:
    """patchify written as loops: token t*V + v of sequence n*M + m holds x[n, c, t*u + f, v, m] at f*C + c."""
    n, c, t, v, m = x.shape
    out = torch.zeros(n * m, (t // u) * v, u * c)
    for i in range(n):
        for p in range(m):
            for tt in range(t // u):
                for j in range(v):
                    for f in range(u):
                        for k in range(c):
                            out[i * m + p, tt * v + j, f * c + k] = x[i, k, tt * u + f, j, p]
    return out


def test_patchify_motion_and_scores_match_loops():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 5, 2)
    patches = masking.patchify(x, 4)
    assert torch.equal(patches, _loop_patchify(x, 4))
    motion = masking.token_motion(patches, joints=5)
    tau = 0.8
    for s in range(4):
        values = []
        for token in range(10):
            t, j = divmod(token, 5)
            t = max(t, 1)  # the first time step copies the second
            diff = [abs(float(patches[s, t * 5 + j, k] - patches[s, (t - 1) * 5 + j, k])) for k in range(12)]
            values.append(sum(diff) / 12)
        assert torch.allclose(motion[s], torch.tensor(values), atol=1e-6)
        top = max(values)
        exps = [math.exp(v / (top * tau + masking.MOTION_EPS)) for v in values]
        expected = [math.log(e / sum(exps)) for e in exps]
        assert torch.allclose(masking.masking_log_odds(motion[s : s + 1], tau)[0], torch.tensor(expected), atol=1e-5)


def test_visible_count_round_and_the_authors_floor():
    assert masking.kept_count(750, 0.9, "round") == 75
    assert masking.kept_count(750, 0.9, "floor") == 74  # int(750 * 0.09999999999999998)
    scores = torch.randn(3, 750)
    kept, mask = masking.choose_kept(scores, 74)
    assert kept.shape == (3, 74) and (mask.sum(dim=1) == 676).all()
    for row in range(3):  # the kept are the lowest scores, in order of position
        assert kept[row].tolist() == sorted(scores[row].argsort()[:74].tolist())
        assert not mask[row, kept[row]].any()


def test_motion_aware_bias_reaches_the_softmax_bound():
    """One masked token of L is a Gumbel-max draw from the softmax: with half the tokens at the
    largest motion and half still, P(a moving token is masked) = e^(1/tau) / (e^(1/tau) + 1)."""
    tau, draws, length = 0.8, 20000, 8
    motion = torch.tensor([[1.0, 0.0] * (length // 2)]).repeat(draws, 1)
    log_odds = masking.masking_log_odds(motion, tau)
    odds = (log_odds[0, 0] - log_odds[0, 1]).exp().item()
    assert odds == pytest.approx(masking.max_odds_ratio(tau), rel=1e-6) == pytest.approx(math.exp(1 / tau))
    g = torch.Generator().manual_seed(0)
    _, mask = masking.choose_kept(log_odds + masking.gumbel(tuple(log_odds.shape), g, log_odds), length - 1)
    moving = mask[:, 0::2].any(dim=1).float().mean().item()
    expected = odds / (odds + 1)
    assert abs(moving - expected) < 4 * math.sqrt(expected * (1 - expected) / draws)
    # no ratio between any two tokens exceeds the bound
    random_motion = torch.rand(50, 30)
    lo = masking.masking_log_odds(random_motion, tau)
    assert ((lo.amax(dim=1) - lo.amin(dim=1)).exp() <= masking.max_odds_ratio(tau) * (1 + 1e-5)).all()


def test_target_normalisation_and_masked_loss_match_loops():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 2, 1)
    motion = masking.frame_motion(x)
    assert torch.equal(motion[:, :, -1], torch.zeros_like(motion[:, :, -1]))
    assert torch.allclose(motion[:, :, 2], x[:, :, 3] - x[:, :, 2])
    target = masking.normalise_patches(masking.patchify(motion, 4))
    raw = masking.patchify(motion, 4)
    for token in range(4):
        values = raw[0, token].tolist()
        mean = sum(values) / 12
        var = sum((v - mean) ** 2 for v in values) / 11  # unbiased
        assert torch.allclose(target[0, token], torch.tensor([(v - mean) / math.sqrt(var + 1e-6) for v in values]), atol=1e-5)
    pred = torch.randn_like(target)
    mask = torch.tensor([[True, False, True, False]])
    per_token = [sum((float(pred[0, i, k]) - float(target[0, i, k])) ** 2 for k in range(12)) / 12 for i in (0, 2)]
    assert masking.masked_mse(pred, target, mask).item() == pytest.approx(sum(per_token) / 2, rel=1e-5)


def test_all_zero_person_gets_uniform_odds_not_nan():
    lo = masking.masking_log_odds(torch.zeros(1, 6), 0.8)
    assert torch.allclose(lo.exp(), torch.full((1, 6), 1 / 6))


def test_batch_generators_differ_by_rank_and_step_and_repeat_for_the_same():
    views = (torch.zeros(1),)
    draw = lambda **kw: torch.rand(4, generator=Batch(views, 0, 0, **kw).generator())
    same = draw(step=3, seed=1, rank=0)
    assert torch.equal(same, draw(step=3, seed=1, rank=0))
    for other in (dict(step=4, seed=1, rank=0), dict(step=3, seed=2, rank=0), dict(step=3, seed=1, rank=1)):
        assert not torch.equal(same, draw(**other))
    batch = Batch(views, 0, 0, step=3)
    assert not torch.equal(torch.rand(4, generator=batch.generator(0)), torch.rand(4, generator=batch.generator(1)))


def test_mamp_learns_to_predict_motion_of_structured_data():
    """A few steps on smooth sequences lower the masked-motion loss (the decoder can use the visible tokens)."""
    torch.manual_seed(0)
    cfg = tiny_config("mamp")
    method = create_method("mamp", cfg, NTU_SPEC)
    t = torch.linspace(0, 1, 8)
    phase = torch.rand(16, 1, 1, 25, 1) * 6.28
    x = torch.sin(6.28 * t.view(1, 1, 8, 1, 1) + phase).expand(16, 3, 8, 25, 2).contiguous()
    optimizer = torch.optim.AdamW(method.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        loss = method.training_step(Batch((x,), 0, step, step=step))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10


def test_translation_by_the_first_frame_keeps_absent_frames_zero():
    data = random_skeletons(n=4, t=12)
    x, lengths = torch.from_numpy(data.data), torch.from_numpy(data.lengths)
    x[0, :, :, :, 1] = 0  # one person only
    out = translate_by_first_frame(x, lengths, joint=1)
    assert torch.allclose(out[:, :, 0, 1, 0], torch.zeros(4, 3), atol=1e-6)  # the origin is 0 after
    assert (out[0, :, :, :, 1] == 0).all()
    for i, length in enumerate(lengths.tolist()):
        assert (out[i, :, length:] == 0).all()
        assert torch.allclose(out[i, :, :length, :, 0], x[i, :, :length, :, 0] - x[i, :, 0, 1, 0].view(3, 1, 1), atol=1e-6)


def test_a_method_the_encoder_cannot_serve_refuses_the_grid_before_training(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "halp_bench.cli", "run", "--methods", "moco,mamp", "--set", "encoder.name=bigru", "--threads", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "method mamp needs the encoder's tokens hook (tokens, run_blocks, pool_tokens), which encoder bigru lacks" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert not (out / "runs").exists() and "pretrain" not in result.stdout  # moco did not train first


def test_hook_requirements_of_the_built_in_methods():
    from halp_bench.methods.requirements import missing_hooks

    assert missing_hooks("mamp", "transformer") == [] and missing_hooks("mamp", "stgcn") == ["tokens"]
    assert missing_hooks("aimclr", "bigru") == ["feature_map"] and missing_hooks("moco", "transformer") == []


def test_the_protocols_see_clips_translated_as_the_training_views():
    torch.manual_seed(0)
    method = create_method("mamp", tiny_config("mamp"), NTU_SPEC)
    evaluated = method.encoder_for_eval().eval()
    x = torch.randn(2, 3, 8, 25, 2) + 3.0  # camera coordinates far from the origin
    assert torch.allclose(evaluated(x), method.encoder.eval()(x - x[:, :, :1, 1:2, :1]), atol=1e-5)
    plain = create_method("mamp", tiny_config("mamp", "augment.translate_first_frame=false"), NTU_SPEC)
    assert plain.encoder_for_eval() is plain.encoder
