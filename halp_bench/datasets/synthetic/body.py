"""Bodies: joint angles per frame, vectorised over (samples, frames); per-sample style (limb gains,
idle postures, brief gestures); forward kinematics to NTU-25 joint positions."""

from __future__ import annotations

import numpy as np

from halp_bench.datasets.synthetic.programs import Context, blend, smoothstep
from halp_bench.datasets.synthetic.spec import NUM_JOINTS, SyntheticSpec
from halp_bench.skeleton import NTU25


class Limb:
    """Two segment directions as absolute angles: `t` from straight down (pi = straight up), `p`
    the azimuth (0 = forward, pi/2 = sideways out, pi = backward). Absolute rather than relative
    angles keep the motion programs short and readable."""

    def __init__(self, shape: tuple[int, int], rest: np.ndarray):
        # rest: (n, 4) per-sample (t1, p1, t2, p2)
        angles = (np.broadcast_to(rest[:, i, None], shape).copy() for i in range(4))
        self.t1, self.p1, self.t2, self.p2 = angles


class Body:
    """One performer's pose program output. Arms/legs are dominant/off rather than right/left so
    that left-handed subjects mirror the program instead of performing another action."""

    def __init__(self, shape: tuple[int, int], rest: np.ndarray):
        # rest: (n, 4, 4) idle (t1, p1, t2, p2) of the dominant arm, off arm, dominant leg, off leg
        limbs = (Limb(shape, rest[:, k]) for k in range(4))
        self.dom_arm, self.off_arm, self.dom_leg, self.off_leg = limbs
        self.pitch = np.zeros(shape)  # torso bend forward
        self.yaw = np.zeros(shape)  # torso turn toward the dominant side
        self.roll = np.zeros(shape)  # torso lean toward the dominant side
        self.forward = np.zeros(shape)  # root displacement along the facing direction (m)
        self.lift = np.zeros(shape)  # root height above standing (m), e.g. jumps


# Idle arm postures (t1, p1, t2, p2) that a body holds when its program leaves an arm alone, and
# how often: they make the arms that carry no class information differ between samples.
IDLE_ARMS = np.array(
    [
        [0.0, 0.9, 0.0, 0.3],  # hanging (plus the subject's habitual hang and elbow bend)
        [0.7, 1.8, 0.73, -1.4],  # hand on the hip
        [0.3, 0.3, 1.2, -0.9],  # hand in front of the belly
        [0.3, 2.8, 0.9, -2.2],  # hand behind the back
    ]
)
IDLE_ARM_PROBS = (0.55, 0.2, 0.15, 0.1)

# Brief gestures (t1, p1, t2, p2) that an arm the program leaves alone makes at a random moment:
# distractors that raw-pose matching cannot tell from the action, but a learned model can ignore.
GESTURES = np.array(
    [
        [2.0, 1.0, 2.6, -1.6],  # scratch the head
        [0.5, 0.2, 2.3, -1.3],  # hand to the chest
        [0.4, 0.3, 1.6, -0.8],  # look at the watch
        [1.2, 0.6, 1.5, 0.2],  # a vague gesture forward
    ]
)


def restyle(ctx: Context, body: Body, rest: np.ndarray, rng: np.random.Generator, spec: SyntheticSpec) -> None:
    """Per-sample style on top of the program: each limb's movement scaled by its own gain, and
    a brief gesture of an idle arm or a weight shift of idle legs (with `spec.distractor_prob`)."""
    n = len(ctx.u)
    for k, limb in enumerate((body.dom_arm, body.off_arm, body.dom_leg, body.off_leg)):
        gain = rng.lognormal(0.0, spec.style_gain, (n, 1))
        moved = False
        for a, name in enumerate(("t1", "p1", "t2", "p2")):
            value = getattr(limb, name)
            setattr(limb, name, rest[:, k, a, None] + (value - rest[:, k, a, None]) * gain)
            moved = moved | (np.abs(value - rest[:, k, a, None]).max(axis=1) > 0.25)
        idle = ~moved & (rng.random(n) < spec.distractor_prob)
        duration = rng.uniform(0.15, 0.35, (n, 1))
        start = rng.uniform(0.0, 1.0, (n, 1)) * (1.0 - duration)
        w = smoothstep((ctx.u - start) / 0.07) * smoothstep((start + duration - ctx.u) / 0.07)
        w *= idle[:, None]
        if k < 2:
            pose = GESTURES[rng.integers(0, len(GESTURES), n)] + rng.normal(0.0, 0.1, (n, 4))
            for a, name in enumerate(("t1", "p1", "t2", "p2")):
                setattr(limb, name, blend(getattr(limb, name), pose[:, a, None], w))
        else:  # step out sideways and back
            limb.t1 = limb.t1 + 0.35 * w
            limb.p1 = blend(limb.p1, np.pi / 2, w)


# Bone lengths of a 1.75 m adult (metres); subjects scale all of them and jitter each a little.
BONES = {
    "spine_low": 0.25,
    "spine_up": 0.24,
    "neck": 0.09,
    "head": 0.15,
    "shoulder": 0.19,
    "upper_arm": 0.29,
    "forearm": 0.26,
    "hand": 0.08,
    "hand_tip": 0.07,
    "thumb": 0.05,
    "hip": 0.09,
    "thigh": 0.43,
    "shin": 0.42,
    "foot": 0.14,
    "ankle": 0.08,
}
BONE_NAMES = tuple(BONES)


def direction(t: np.ndarray, p: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Unit vector (..., 3) in the body frame (x = the body's left, y = up, z = forward)."""
    st = np.sin(t)
    return np.stack([side * st * np.sin(p), -np.cos(t), st * np.cos(p)], axis=-1)


def rot_y(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_x(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_z(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


MIRROR = np.array(NTU25.mirror)  # NTU-25 joints that trade places when a body is mirrored left <-> right


def forward_kinematics(body: Body, bones: np.ndarray) -> np.ndarray:
    """Joint positions (n, T, 25, 3) of a right-handed body in its own frame, feet on the floor.

    The dominant limbs are the right ones; left-handed subjects are mirrored afterwards, which
    mirrors every program (torso turns and leans included) at once.
    """
    n, t_len = body.pitch.shape
    length = {name: bones[:, i, None, None] for i, name in enumerate(BONE_NAMES)}  # (n, 1, 1)
    right, left = -np.ones((1, 1)), np.ones((1, 1))
    local = np.zeros((n, t_len, NUM_JOINTS, 3))  # upper body in the torso frame

    def bone(name: str, direction: np.ndarray) -> np.ndarray:
        return length[name] * direction

    local[:, :, 1] = bone("spine_low", np.array([0.0, 1.0, 0.0]))
    local[:, :, 20] = local[:, :, 1] + bone("spine_up", np.array([0.0, 1.0, 0.0]))
    local[:, :, 2] = local[:, :, 20] + bone("neck", np.array([0.0, 1.0, 0.08]))
    local[:, :, 3] = local[:, :, 2] + bone("head", np.array([0.0, 1.0, 0.12]))
    for arm, side, (j_sh, j_el, j_wr, j_ha, j_tip, j_th) in ((body.dom_arm, right, (8, 9, 10, 11, 23, 24)), (body.off_arm, left, (4, 5, 6, 7, 21, 22))):
        upper = direction(arm.t1, arm.p1, side)
        lower = direction(arm.t2, arm.p2, side)
        local[:, :, j_sh] = local[:, :, 20] + bone("shoulder", np.array([side[0, 0], -0.15, 0.0]))
        local[:, :, j_el] = local[:, :, j_sh] + bone("upper_arm", upper)
        local[:, :, j_wr] = local[:, :, j_el] + bone("forearm", lower)
        local[:, :, j_ha] = local[:, :, j_wr] + bone("hand", lower)
        local[:, :, j_tip] = local[:, :, j_ha] + bone("hand_tip", lower)
        inward = np.array([-0.6 * side[0, 0], 0.0, 0.3])
        local[:, :, j_th] = local[:, :, j_ha] + bone("thumb", 0.5 * lower + inward)
    # torso: turn and lean toward the dominant (right, -x) side, bend forward (+z)
    torso = rot_y(-body.yaw) @ rot_x(body.pitch) @ rot_z(body.roll)
    joints = local @ torso.swapaxes(-1, -2)

    for leg, side, (j_hip, j_knee, j_ankle, j_foot) in ((body.dom_leg, right, (16, 17, 18, 19)), (body.off_leg, left, (12, 13, 14, 15))):
        joints[:, :, j_hip] = bone("hip", np.array([side[0, 0], -0.6, 0.0]))
        joints[:, :, j_knee] = joints[:, :, j_hip] + bone("thigh", direction(leg.t1, leg.p1, side))
        joints[:, :, j_ankle] = joints[:, :, j_knee] + bone("shin", direction(leg.t2, leg.p2, side))
        joints[:, :, j_foot] = joints[:, :, j_ankle] + bone("foot", np.array([0.0, -0.35, 0.94]))

    # stand on the lower ankle, then add jumps and steps
    floor = np.minimum(joints[:, :, 14, 1], joints[:, :, 18, 1]) - length["ankle"][..., 0]
    joints[..., 1] += (body.lift - floor)[..., None]
    joints[..., 2] += body.forward[..., None]
    return joints
