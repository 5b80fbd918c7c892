"""A random rotation of whole samples about the origin: angles U(-max, max) about x, y and z,
R = Rz Ry Rx, one R per sample for all its frames and persons (CTR-GCN's and MAMP's `random_rot`,
papers/mamp.md §2). MAMP's pretraining views and the protocols' training crops
(`eval.train_rotation`) both use it. Being linear, it leaves absent (all-zero) persons and zero
padding at zero, and commutes with a translation by any rotated origin: R x - R x0 = R (x - x0).
"""

from __future__ import annotations

import torch
from torch import Tensor

from halp_bench.datasets.views.cmd import uniform
from halp_bench.datasets.views.extreme import rotation_matrices
from halp_bench.errors import ConfigError


def random_rotation(x: Tensor, max_angle: float, generator: torch.Generator | None, setting: str = "augment.rotation") -> Tensor:
    """Rotate each sample of x (B, 3, T, V, M) by angles U(-max_angle, max_angle) about x, y and z
    (R = Rz Ry Rx), drawn from `generator` as (B, 3) uniforms; `setting` names the option in the
    error for data that are not 3-D."""
    if x.shape[1] != 3:
        raise ConfigError(f"the rotation ({setting}) needs 3-D joints (C=3), got C={x.shape[1]}; --set {setting}=0 turns it off")
    angles = uniform((len(x), 3), -max_angle, max_angle, x, generator)
    return torch.einsum("bij,bjtvm->bitvm", rotation_matrices(angles), x)
