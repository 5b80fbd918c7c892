"""CMD (Mao et al., ECCV 2022): joint, motion and bone MoCo with cross-modal mutual distillation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from halp_bench.methods.moco import MoCo, MoCoSettings, Streams
from halp_bench.registry import register_method
from halp_bench.validation import ranged


@dataclass
class CMDSettings(MoCoSettings):
    """Cross-modal mutual distillation: each teacher's top-k queue slots, its temperature, the
    students' temperature and the term's weight. `cpu` preset: top-k 512 (of a 1024 queue)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"cmd_topk": 512}}
    cmd_topk: int = ranged(8192, "[1, inf)")
    cmd_teacher_temperature: float = ranged(0.05, "(0, inf)")
    cmd_student_temperature: float = ranged(0.1, "(0, inf)")
    cmd_weight: float = ranged(1.0, "[0, inf)")


def cmd_distillation(teacher: Streams, student: Streams, topk: int, teacher_temperature: float, student_temperature: float) -> Tensor:
    """L_CMD = sum over ordered stream pairs A != B of KL(P_teacher(A) || P_student(B)), batch mean.

    teacher[A]: (B, K) cosines k_A . queue_A (no grad); student[B]: (B, K) cosines q_B . queue_B.
    P_teacher(A) = softmax over A's top-k slots of teacher/Tt; P_student(B) = log-softmax of the
    student's cosines at the same slots / Ts (official_code.md §4). Each teacher's top-k is computed
    once and shared by its two students.
    """
    total = teacher[next(iter(teacher))].new_zeros(())
    for a, sims_a in teacher.items():
        values, index = sims_a.topk(min(topk, sims_a.shape[1]), dim=1)
        log_p_teacher = F.log_softmax(values / teacher_temperature, dim=1)
        for b, sims_b in student.items():
            if a == b:
                continue
            log_p_student = F.log_softmax(sims_b.gather(1, index) / student_temperature, dim=1)
            total = total + F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return total


@register_method("cmd", "CMD: joint/motion/bone MoCo with cross-modal mutual distillation (ECCV'22)", settings=CMDSettings)
class CMD(MoCo):
    """Three streams with one queue bank each (sharing one pointer) plus w * L_CMD."""

    family: ClassVar[str] = "paper"
    table_order: ClassVar[int] = 3
    citation: ClassVar[str] = "Mao et al., ECCV 2022"

    streams = ("joint", "motion", "bone")
    settings: CMDSettings
    run_defaults: ClassVar[dict[str, dict[str, Any]]] = {"official": {"linear.lr": 0.1}}  # CMD's probe script

    def queue_losses(self, k: Streams, queues: Streams, student: Streams) -> dict[str, Tensor]:
        m = self.settings
        with torch.no_grad():
            teacher = {s: k[s] @ queues[s].t() for s in self.streams}
        return {"cmd": m.cmd_weight * cmd_distillation(teacher, student, m.cmd_topk, m.cmd_teacher_temperature, m.cmd_student_temperature)}
