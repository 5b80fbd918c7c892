"""CMD's pieces against explicit loops and hand-computed cases."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from halp_bench.datasets.views.modalities import bone, motion
from halp_bench.methods.cmd import cmd_distillation
from halp_bench.methods.components import KeyQueue
from halp_bench.skeleton import KINECT_V1_20, NTU25

OFFICIAL_NTU_BONES = [
    (1, 2),
    (2, 21),
    (3, 21),
    (4, 3),
    (5, 21),
    (6, 5),
    (7, 6),
    (8, 7),
    (9, 21),
    (10, 9),
    (11, 10),
    (12, 11),
    (13, 1),
    (14, 13),
    (15, 14),
    (16, 15),
    (17, 1),
    (18, 17),
    (19, 18),
    (20, 19),
    (21, 21),
    (22, 23),
    (23, 8),
    (24, 25),
    (25, 12),
]


def _loop_cmd(teacher, student, topk, tt, ts):
    total = 0.0
    names = list(teacher)
    batch = teacher[names[0]].shape[0]
    for a in names:
        for b in names:
            if a == b:
                continue
            pair = 0.0
            for i in range(batch):
                row = teacher[a][i].tolist()
                slots = sorted(range(len(row)), key=lambda j: -row[j])[:topk]
                zt = sum(math.exp(row[j] / tt) for j in slots)
                zs = sum(math.exp(float(student[b][i, j]) / ts) for j in slots)
                for j in slots:
                    p = math.exp(row[j] / tt) / zt
                    s = math.exp(float(student[b][i, j]) / ts) / zs
                    pair += p * math.log(p / s)
            total += pair / batch
    return total


def test_cmd_distillation_matches_a_loop_over_samples_and_pairs():
    g = torch.Generator().manual_seed(0)
    streams = ("joint", "motion", "bone")
    queues = {s: F.normalize(torch.randn(40, 8, generator=g), dim=1) for s in streams}
    k = {s: F.normalize(torch.randn(5, 8, generator=g), dim=1) for s in streams}
    q = {s: F.normalize(torch.randn(5, 8, generator=g), dim=1) for s in streams}
    teacher = {s: k[s] @ queues[s].t() for s in streams}
    student = {s: q[s] @ queues[s].t() for s in streams}
    ours = cmd_distillation(teacher, student, topk=10, teacher_temperature=0.05, student_temperature=0.1)
    assert math.isclose(float(ours), _loop_cmd(teacher, student, 10, 0.05, 0.1), rel_tol=1e-4)


def test_shared_pointer_keeps_slots_aligned_after_wraparound():
    queue = KeyQueue(size=7, dim=3, banks=3)
    for step in range(5):  # 5 x 3 = 15 keys through 7 slots: wraps twice
        ids = torch.arange(step * 3, step * 3 + 3, dtype=torch.float32)
        keys = ids.view(3, 1).expand(3, 3)
        queue.push(keys, keys + 1000, keys + 2000)
    assert torch.equal(queue.keys[1], queue.keys[0] + 1000)
    assert torch.equal(queue.keys[2], queue.keys[0] + 2000)
    assert queue.recent(7)[:, 0].tolist() == list(range(8, 15))


def test_motion_hand_computed():
    x = torch.tensor([0.0, 1.0, 4.0, 9.0]).view(1, 1, 4, 1, 1)
    assert motion(x).flatten().tolist() == [1.0, 3.0, 5.0, 0.0]


def test_bone_hand_computed_and_official_list():
    assert [(a + 1, b + 1) for a, b in NTU25.bones] == OFFICIAL_NTU_BONES
    x = torch.zeros(1, 3, 1, 25, 1)
    x[0, :, 0, :, 0] = torch.arange(25.0).repeat(3, 1) * torch.tensor([[1.0], [10.0], [100.0]])
    b = bone(x, NTU25)[0, :, 0, :, 0]
    assert torch.equal(b[:, 0], torch.tensor([-1.0, -10.0, -100.0]))  # joint 1 minus joint 2
    assert torch.equal(b[:, 20], torch.zeros(3))  # (21, 21): the zero bone
    assert torch.equal(b[:, 22], torch.tensor([15.0, 150.0, 1500.0]))  # joint 23 minus joint 8
    assert bone(torch.randn(2, 3, 4, 20, 1), KINECT_V1_20).shape == (2, 3, 4, 20, 1)


def test_eval_stream_selects_one_stream_or_the_ensemble():
    import pytest
    import torch.nn.functional as F

    from conftest import NTU_SPEC, tiny_config
    from halp_bench.errors import ConfigError
    from halp_bench.methods.base import create_method

    torch.manual_seed(0)
    cfg = tiny_config("cmd")
    method = create_method("cmd", cfg, NTU_SPEC).eval()
    encoders = {s: e.encoder for s, e in method.encoders_q.items()}
    x = torch.randn(3, 3, 8, 25, 2)
    assert method.encoder_for_eval() is encoders["joint"]
    cfg.eval.stream = "motion"
    assert torch.allclose(method.encoder_for_eval()(x), encoders["motion"](motion(x)))
    cfg.eval.stream = "ensemble"
    expected = torch.stack(
        [F.normalize(encoders["joint"](x), dim=1), F.normalize(encoders["motion"](motion(x)), dim=1), F.normalize(encoders["bone"](bone(x, NTU25)), dim=1)]
    ).mean(dim=0)
    assert torch.allclose(method.encoder_for_eval()(x), expected, atol=1e-6)
    moco = create_method("moco", tiny_config("moco", "eval.stream=bone"), NTU_SPEC)
    with pytest.raises(ConfigError, match="trains only the joint stream"):
        moco.encoder_for_eval()
