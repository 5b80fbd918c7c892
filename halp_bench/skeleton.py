"""Skeleton layouts as data (joint count, bone pairs, the joints normalisation needs, registered
by name) and the description of the data that encoders and methods are built from.

Datasets name their layout; modalities (bones) and normalisation read it from here, so no code
branches on dataset names.
"""

from __future__ import annotations

from dataclasses import dataclass

from halp_bench.registry import LAYOUTS


@dataclass(frozen=True)
class SkeletonLayout:
    """`bones` are 0-based (joint, partner) pairs: bone[joint] = x[joint] - x[partner].

    The joints normalisation needs (datasets/raw/normalize.py), each None where the layout does not
    know it: `center_joint` is subtracted by `center`, `center_first` and `agcn`; `spine` = (hip,
    spine) is the bone `agcn` turns to +z and `shoulders` = (left, right) the one it turns to +x.
    """

    name: str
    num_joints: int
    bones: tuple[tuple[int, int], ...]
    center_joint: int | None
    spine: tuple[int, int] | None = None
    shoulders: tuple[int, int] | None = None
    graph_center: int | None = None
    mirror: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for a, b in self.bones:
            if not (0 <= a < self.num_joints and 0 <= b < self.num_joints):
                raise ValueError(f"layout {self.name}: bone ({a}, {b}) outside 0..{self.num_joints - 1}")
        named = [
            ("center_joint", (self.center_joint,) if self.center_joint is not None else ()),
            ("spine", self.spine or ()),
            ("shoulders", self.shoulders or ()),
        ]
        for what, joints in named:
            if any(not 0 <= j < self.num_joints for j in joints):
                raise ValueError(f"layout {self.name}: {what} {joints} outside 0..{self.num_joints - 1}")
        if self.graph_center is not None and not 0 <= self.graph_center < self.num_joints:
            raise ValueError(f"layout {self.name}: graph_center {self.graph_center} outside 0..{self.num_joints - 1}")
        if self.mirror is not None and sorted(self.mirror) != list(range(self.num_joints)):
            raise ValueError(f"layout {self.name}: mirror must be a permutation of 0..{self.num_joints - 1}")

    @property
    def partition_center(self) -> int:
        """The joint graph encoders partition around: `graph_center`, else `center_joint`, else 0."""
        return next(j for j in (self.graph_center, self.center_joint, 0) if j is not None)

    def describe(self) -> str:
        """One line for `halp-bench list`: size and the joints normalisation uses."""
        parts = [f"{self.num_joints} joints, {len(self.bones)} bones"]
        if self.center_joint is not None:
            parts.append(f"centre {self.center_joint}")
        if self.spine and self.shoulders:
            parts.append(f"spine {self.spine[0]}->{self.spine[1]}, shoulders {self.shoulders[0]}->{self.shoulders[1]}")
        return ", ".join(parts)


# The official NTU RGB+D bone pairs (1-based, as in CMD's `MoCo.Bone`), including the self-pair
# (21, 21) of the spine-shoulder joint, whose bone is therefore zero.
NTU_BONES_1BASED: tuple[tuple[int, int], ...] = (
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
)

NTU25 = SkeletonLayout(
    name="ntu25",
    num_joints=25,
    bones=tuple((a - 1, b - 1) for a, b in NTU_BONES_1BASED),
    center_joint=1,  # spine middle (0-based)
    spine=(0, 1),  # base of the spine -> spine middle (2s-AGCN's z-axis bone)
    shoulders=(4, 8),  # left -> right shoulder (2s-AGCN's `xaxis=[8, 4]`, 0-based)
    graph_center=20,  # spine shoulder: ST-GCN's `ntu-rgb+d` layout centre (1-based 21)
    mirror=(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23, 24, 21, 22),  # arms, legs, hands, thumbs
)

# Kinect v1 (20 joints): hip centre 1, spine 2, shoulder centre 3, head 4, left arm 5-8, right arm
# 9-12, left leg 13-16, right leg 17-20 (1-based), as used by NW-UCLA / MSR-Action3D style data.
KINECT_V1_BONES_1BASED: tuple[tuple[int, int], ...] = (
    (1, 2),
    (2, 3),
    (3, 3),
    (4, 3),
    (5, 3),
    (6, 5),
    (7, 6),
    (8, 7),
    (9, 3),
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
)

KINECT_V1_20 = SkeletonLayout(
    name="kinect_v1_20",
    num_joints=20,
    bones=tuple((a - 1, b - 1) for a, b in KINECT_V1_BONES_1BASED),
    center_joint=1,  # spine (0-based)
    spine=(0, 1),  # hip centre -> spine
    shoulders=(4, 8),  # left -> right shoulder
    graph_center=2,  # shoulder centre, the joint NTU's graph centre corresponds to
    mirror=(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15),  # arms and legs
)

for _layout in (NTU25, KINECT_V1_20):
    LAYOUTS.add(_layout.name, _layout, _layout.describe())


@dataclass(frozen=True)
class DataSpec:
    """What an encoder or a method is built from: the shape of the views it will see and the
    skeleton they show (bones for modalities and graph encoders)."""

    channels: int  # C: coordinates per joint
    frames: int  # T of every view (data.frames)
    joints: int  # V
    persons: int  # M
    layout: SkeletonLayout

    @property
    def in_channels(self) -> int:
        """Features per frame of a sequence encoder: C * V * M."""
        return self.channels * self.joints * self.persons


def get_layout(name: str) -> SkeletonLayout:
    return LAYOUTS.get(name)


def chain_bones(num_joints: int) -> tuple[tuple[int, int], ...]:
    """Each joint's partner is the previous joint (joint 0: itself)."""
    return tuple((j, max(j - 1, 0)) for j in range(num_joints))


def chain_layout(num_joints: int) -> SkeletonLayout:
    """A fallback for data with no known layout: chained bones, no joint known to normalisation."""
    return SkeletonLayout(f"chain{num_joints}", num_joints, chain_bones(num_joints), None)
