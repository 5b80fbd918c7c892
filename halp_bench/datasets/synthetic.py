"""Built-in synthetic skeleton actions: a dataset that needs no download and is made in ~1 s.

Why it exists: every protocol must run on a fresh machine, and the benchmark needs a dataset whose
difficulty is known. Bodies are NTU-25 skeletons from forward kinematics (per-subject bone lengths;
joint angles driven by a per-class motion program), filmed by Kinect-like cameras.

Nuisances hide the motion from raw-pose matching: camera view (yaw about the vertical, tilt,
distance, height), subject size and proportions, handedness (left-handed subjects mirror every
program; classes are "dominant hand" actions, so mirroring never turns one class into another),
tempo, a time warp within the clip, amplitude, phase, where in the clip the action happens,
facing and position jitter, idle postures and brief gestures of the limbs the action leaves
alone, sensor noise and a few dropped joints (zeros, like Kinect losses). Samples are
zero-padded after their length. Two pairs of `synthetic` classes differ mainly in their dynamics
("wave" / "raise hand", "walk" / "jog in place"), which frame-by-frame matching cannot see.

Splits: `xsub` (odd subject ids train, even ids test; the default) and `xview` (views 2, 3 train,
view 1 test). Metadata: `subject`, `view` (1-based, as in NTU). `synthetic-target` is the transfer
target (an NTU -> PKU-MMD stand-in): ten other motion programs, other camera angles, other subjects.

Difficulty, measured by `raw_pose_knn_accuracy` (cosine 1-NN on raw poses resized to 32 frames;
chance 10 %), 1800 samples:

    dataset (seed)          xsub    xview   same after 2s-AGCN pre-normalisation (xsub, xview)
    synthetic (0)           47.4 %  46.8 %  79.9 %, 81.7 %
    synthetic-target (1)    49.8 %  46.2 %  89.6 %, 92.2 %

A small supervised BiGRU (1x128, 60 epochs, pre-normalised input) reaches about 86 % on synthetic
xsub; most of its errors are "wave" / "raise hand", which it has not learned to tell apart.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from halp_bench.config import DataConfig
from halp_bench.datasets.base import SkeletonData
from halp_bench.registry import register_dataset
from halp_bench.skeleton import NTU25

FPS = 30.0  # frames per second of the simulated sensor: program frequencies are in Hz
NUM_JOINTS = 25

SOURCE_CLASSES: tuple[str, ...] = (
    "wave", "raise hand", "kick", "squat", "walk in place",
    "jog in place", "punch", "clap", "handshake", "push",
)
TARGET_CLASSES: tuple[str, ...] = (
    "drink", "phone call", "jump", "bow", "side arm raise",
    "throw", "point forward", "turn torso", "hug", "give object",
)


@dataclass(frozen=True)
class SyntheticSpec:
    """Generation parameters. Frozen and hashable so that it can key the in-process cache."""

    num_samples: int = 1800
    classes: tuple[str, ...] = SOURCE_CLASSES  # motion program names, see `PROGRAMS`
    num_subjects: int = 20
    view_yaw_deg: tuple[float, ...] = (-45.0, 0.0, 45.0)  # camera azimuth per view (view 1, 2, ...)
    view_tilt_deg: tuple[float, ...] = (4.0, -3.0, 6.0)  # camera pitch per view
    max_frames: int = 96
    min_frames: int = 40
    size_range: tuple[float, float] = (0.72, 1.28)  # subject height relative to 1.75 m
    facing_jitter_deg: float = 20.0  # std of where a performer faces, relative to the script
    view_jitter_deg: float = 5.0  # std of the camera yaw around its view angle
    position_jitter: float = 0.55  # metres, std of the sideways position in the camera frame
    action_span: tuple[float, float] = (0.5, 0.9)  # share of the clip the action takes (random start)
    style_gain: float = 0.15  # std of the log of each limb's movement gain per sample
    distractor_prob: float = 0.4  # chance that a limb the action leaves alone makes a brief gesture
    time_warp: float = 0.5  # < 1: the largest change of speed within a clip (0.5 = +-50 %)
    noise_std: float = 0.01  # metres, Gaussian sensor noise on every joint
    drop_prob: float = 0.15  # chance that a sample loses a few joints for a few frames

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_views(self) -> int:
        return len(self.view_yaw_deg)


TARGET_SPEC = SyntheticSpec(
    classes=TARGET_CLASSES,
    num_subjects=16,
    view_yaw_deg=(-60.0, -10.0, 30.0),
    view_tilt_deg=(-2.0, 8.0, 3.0),
)
SOURCE_SEED = 0
TARGET_SEED = 1


# ---------------------------------------------------------------------------------------------
# Bodies: joint angles per frame, vectorised over (samples, frames)
# ---------------------------------------------------------------------------------------------


class _Limb:
    """Two segment directions as absolute angles: `t` from straight down (pi = straight up), `p`
    the azimuth (0 = forward, pi/2 = sideways out, pi = backward). Absolute rather than relative
    angles keep the motion programs short and readable."""

    def __init__(self, shape: tuple[int, int], rest: np.ndarray):
        # rest: (n, 4) per-sample (t1, p1, t2, p2)
        angles = (np.broadcast_to(rest[:, i, None], shape).copy() for i in range(4))
        self.t1, self.p1, self.t2, self.p2 = angles


class _Body:
    """One performer's pose program output. Arms/legs are dominant/off rather than right/left so
    that left-handed subjects mirror the program instead of performing another action."""

    def __init__(self, shape: tuple[int, int], rest: np.ndarray):
        # rest: (n, 4, 4) idle (t1, p1, t2, p2) of the dominant arm, off arm, dominant leg, off leg
        limbs = (_Limb(shape, rest[:, k]) for k in range(4))
        self.dom_arm, self.off_arm, self.dom_leg, self.off_leg = limbs
        self.pitch = np.zeros(shape)  # torso bend forward
        self.yaw = np.zeros(shape)  # torso turn toward the dominant side
        self.roll = np.zeros(shape)  # torso lean toward the dominant side
        self.forward = np.zeros(shape)  # root displacement along the facing direction (m)
        self.lift = np.zeros(shape)  # root height above standing (m), e.g. jumps


@dataclass
class _Context:
    """What a motion program may read: time in two clocks, and per-sample randomness."""

    u: np.ndarray  # (n, T) normalised clip time, 0 at the first frame and 1 at the last valid one
    t: np.ndarray  # (n, T) action time in seconds (frame / FPS * tempo)
    amp: np.ndarray  # (n, 1) amplitude factor
    phase: np.ndarray  # (n, 1) radians
    freq: np.ndarray  # (n, 1) frequency jitter factor
    start: np.ndarray  # (n, 1) normalised start of the action
    end: np.ndarray  # (n, 1) normalised end of the action

    def take(self, idx: np.ndarray) -> "_Context":
        return _Context(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})

    def osc(self, hz: float) -> np.ndarray:
        return np.sin(2 * np.pi * hz * self.freq * self.t + self.phase)

    def cycle(self, hz: float) -> np.ndarray:
        """0 at rest, 1 at the peak: repeated actions that start from the rest pose."""
        return 0.5 - 0.5 * np.cos(2 * np.pi * hz * self.freq * self.t + self.phase)

    def hold(self, ramp: float = 0.12) -> np.ndarray:
        """0 -> 1 -> 0 over [start, end]: reach a pose, hold it (or oscillate around it), return."""
        return _smoothstep((self.u - self.start) / ramp) * _smoothstep((self.end - self.u) / ramp)

    def pulse(self, centre: np.ndarray | float, width: float) -> np.ndarray:
        """A single stroke (kick, push, throw) centred in the action window."""
        c = self.start + (self.end - self.start) * centre
        return np.exp(-(((self.u - c) / width) ** 2))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _blend(limb_value: np.ndarray, target: np.ndarray | float, weight: np.ndarray) -> np.ndarray:
    return limb_value + (target - limb_value) * weight


Program = Callable[[_Context, _Body, "_Body | None"], None]
PROGRAMS: dict[str, tuple[Program, bool, int]] = {}  # name -> (program, two-person, base frames)


def _program(name: str, base_frames: int, two_person: bool = False) -> Callable[[Program], Program]:
    def add(fn: Program) -> Program:
        PROGRAMS[name] = (fn, two_person, base_frames)
        return fn

    return add


# -- source classes ---------------------------------------------------------------------------


@_program("wave", 80)
def _wave(c: _Context, a: _Body, b: _Body | None) -> None:
    """The hand of "raise hand", swaying side to side: only the dynamics tell the two apart."""
    h, arm, sway = c.hold(), a.dom_arm, c.amp * c.osc(2.0)
    arm.t1 = _blend(arm.t1, 2.3, h)
    arm.p1 = _blend(arm.p1, 1.2 + 0.15 * sway, h)
    arm.t2 = _blend(arm.t2, 2.55 + 0.7 * sway, h)
    arm.p2 = _blend(arm.p2, 1.3, h)


@_program("raise hand", 75)
def _raise_hand(c: _Context, a: _Body, b: _Body | None) -> None:
    h, arm = c.hold(), a.dom_arm
    arm.t1 = _blend(arm.t1, 2.3, h)
    arm.p1 = _blend(arm.p1, 1.2, h)
    arm.t2 = _blend(arm.t2, 2.65, h)
    arm.p2 = _blend(arm.p2, 1.3, h)


@_program("kick", 60)
def _kick(c: _Context, a: _Body, b: _Body | None) -> None:
    chamber = c.pulse(0.42, 0.16)
    strike = c.pulse(0.5, 0.09) * np.minimum(c.amp, 1.1)
    leg = a.dom_leg
    leg.t1 = leg.t1 + 1.2 * chamber + 0.25 * strike
    leg.p1 = _blend(leg.p1, 0.0, np.minimum(3 * np.maximum(chamber, strike), 1.0))
    leg.t2 = leg.t2 + 0.2 * chamber + 1.1 * strike
    leg.p2 = _blend(leg.p2, 0.0, np.minimum(3 * strike, 1.0))
    for arm in (a.dom_arm, a.off_arm):  # balance
        arm.t1 = arm.t1 + 0.5 * chamber
        arm.p1 = _blend(arm.p1, 1.4, chamber)
    a.pitch = -0.15 * chamber


@_program("squat", 80)
def _squat(c: _Context, a: _Body, b: _Body | None) -> None:
    down = c.cycle(0.45) * c.hold(0.05) * np.minimum(c.amp, 1.05)
    for leg in (a.dom_leg, a.off_leg):
        leg.t1 = _blend(leg.t1, 1.35, down)
        leg.p1 = _blend(leg.p1, 0.25, down)
        leg.t2 = _blend(leg.t2, 0.55, down)
        leg.p2 = _blend(leg.p2, np.pi, down)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = _blend(arm.t1, 1.5, down)
        arm.p1 = _blend(arm.p1, 0.1, down)
        arm.t2 = _blend(arm.t2, 1.5, down)
        arm.p2 = _blend(arm.p2, 0.05, down)
    a.pitch = 0.45 * down


def _in_place(c: _Context, a: _Body, hz: float, knee: float, elbow: float) -> None:
    """Alternate the legs (thigh up, knee bent) with the arms swinging against them."""
    h = c.hold(0.08)
    s = c.osc(hz) * h * c.amp
    for leg, sign in ((a.dom_leg, 1.0), (a.off_leg, -1.0)):
        up = np.maximum(sign * s, 0.0)
        leg.t1 = leg.t1 + 1.0 * up
        leg.p1 = _blend(leg.p1, 0.0, np.minimum(4 * up, 1.0))
        leg.t2 = leg.t2 + knee * up
        leg.p2 = _blend(leg.p2, np.pi, np.minimum(4 * up, 1.0))
    for arm, sign in ((a.dom_arm, -1.0), (a.off_arm, 1.0)):
        arm.t1 = _blend(arm.t1, 0.55 * sign * s, h)
        arm.p1 = _blend(arm.p1, 0.0, h)
        arm.t2 = _blend(arm.t2, 0.9 * sign * s + elbow, h)
        arm.p2 = _blend(arm.p2, 0.0, h)


@_program("walk in place", 85)
def _walk(c: _Context, a: _Body, b: _Body | None) -> None:
    _in_place(c, a, hz=0.9, knee=0.25, elbow=0.6)


@_program("jog in place", 70)
def _jog(c: _Context, a: _Body, b: _Body | None) -> None:
    _in_place(c, a, hz=1.7, knee=0.6, elbow=0.9)


@_program("punch", 65)
def _punch(c: _Context, a: _Body, b: _Body | None) -> None:
    guard = c.hold(0.1)
    hit = np.maximum(c.osc(1.1), 0.0) ** 3 * guard * np.minimum(c.amp, 1.1)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = _blend(arm.t1, 0.55, guard)
        arm.p1 = _blend(arm.p1, 0.5, guard)
        arm.t2 = _blend(arm.t2, 2.35, guard)
        arm.p2 = _blend(arm.p2, -0.1, guard)
    arm = a.dom_arm
    arm.t1 = arm.t1 + 1.0 * hit
    arm.p1 = _blend(arm.p1, -0.1, hit)
    arm.t2 = arm.t2 - 0.8 * hit
    a.yaw = -0.3 * hit  # the shoulder drives forward


@_program("clap", 65)
def _clap(c: _Context, a: _Body, b: _Body | None) -> None:
    h = c.hold()
    close = c.cycle(1.8) * c.amp
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = _blend(arm.t1, 1.1, h)
        arm.p1 = _blend(arm.p1, 0.7 - 0.45 * close, h)
        arm.t2 = _blend(arm.t2, 1.7, h)
        arm.p2 = _blend(arm.p2, 0.9 - 1.55 * close, h)


@_program("handshake", 75, two_person=True)
def _handshake(c: _Context, a: _Body, b: _Body | None) -> None:
    assert b is not None  # a two-person program
    h = c.hold(0.15)
    shake = 0.18 * c.osc(2.2) * h
    for body in (a, b):
        arm = body.dom_arm
        arm.t1 = _blend(arm.t1, 0.8, h)
        arm.p1 = _blend(arm.p1, -0.15, h)
        arm.t2 = _blend(arm.t2, 1.45, h) + shake
        arm.p2 = _blend(arm.p2, -0.25, h)
        body.forward = 0.08 * h


@_program("push", 60, two_person=True)
def _push(c: _Context, a: _Body, b: _Body | None) -> None:
    assert b is not None  # a two-person program
    reach = c.pulse(0.45, 0.18)
    shove = _smoothstep((c.u - c.start - 0.45 * (c.end - c.start)) / 0.15) * np.minimum(c.amp, 1.1)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = _blend(arm.t1, 1.45, reach)
        arm.p1 = _blend(arm.p1, 0.15, reach)
        arm.t2 = _blend(arm.t2, 1.5, reach)
        arm.p2 = _blend(arm.p2, 0.0, reach)
    a.forward = 0.15 * reach
    a.pitch = 0.2 * reach
    b.forward = -0.45 * shove  # the partner is pushed back ...
    b.pitch = -0.3 * shove * (1 - shove) * 4 - 0.05 * shove  # ... rocks backwards ...
    for arm in (b.dom_arm, b.off_arm):  # ... and throws the arms out
        arm.t1 = arm.t1 + 0.9 * shove * (1 - 0.5 * shove)
        arm.p1 = _blend(arm.p1, 1.3, shove)


# -- target classes ---------------------------------------------------------------------------


@_program("drink", 80)
def _drink(c: _Context, a: _Body, b: _Body | None) -> None:
    h = c.hold(0.15)
    sip = 0.15 * c.osc(0.7) * h
    arm = a.dom_arm
    arm.t1 = _blend(arm.t1, 0.75, h) + sip
    arm.p1 = _blend(arm.p1, 0.35, h)
    arm.t2 = _blend(arm.t2, 2.75, h)
    arm.p2 = _blend(arm.p2, -0.6, h)
    a.pitch = -0.1 * h


@_program("phone call", 85)
def _phone(c: _Context, a: _Body, b: _Body | None) -> None:
    h = c.hold(0.1)
    arm = a.dom_arm
    arm.t1 = _blend(arm.t1, 0.55, h)
    arm.p1 = _blend(arm.p1, 1.2, h)
    arm.t2 = _blend(arm.t2, 2.9, h)
    arm.p2 = _blend(arm.p2, -1.4, h)
    a.roll = 0.12 * h + 0.05 * c.osc(0.3) * h


@_program("jump", 60)
def _jump(c: _Context, a: _Body, b: _Body | None) -> None:
    hop = c.cycle(1.0) * c.hold(0.05)
    air = np.maximum(hop - 0.55, 0.0) / 0.45
    crouch = np.maximum(0.5 - np.abs(hop - 0.35) * 2, 0.0) * 2
    for leg in (a.dom_leg, a.off_leg):
        leg.t1 = _blend(leg.t1, 0.9, crouch)
        leg.p1 = _blend(leg.p1, 0.2, crouch)
        leg.t2 = _blend(leg.t2, 0.45, crouch)
        leg.p2 = _blend(leg.p2, np.pi, crouch)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = arm.t1 + 1.8 * air - 0.4 * crouch
        arm.p1 = _blend(arm.p1, 0.2, np.maximum(air, crouch))
    a.lift = 0.3 * air * np.minimum(c.amp, 1.1)
    a.pitch = 0.3 * crouch


@_program("bow", 75)
def _bow(c: _Context, a: _Body, b: _Body | None) -> None:
    h = c.pulse(0.5, 0.25) * np.minimum(c.amp, 1.1)
    a.pitch = 1.0 * h
    for arm in (a.dom_arm, a.off_arm):
        arm.p1 = _blend(arm.p1, 1.5, h)


@_program("side arm raise", 80)
def _side_raise(c: _Context, a: _Body, b: _Body | None) -> None:
    up = c.cycle(0.6) * c.hold(0.05) * np.minimum(c.amp, 1.1)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = _blend(arm.t1, 2.5, up)
        arm.p1 = _blend(arm.p1, np.pi / 2, up)
        arm.t2 = _blend(arm.t2, 2.6, up)
        arm.p2 = _blend(arm.p2, np.pi / 2, up)
    for leg in (a.dom_leg, a.off_leg):
        leg.t1 = leg.t1 + 0.2 * up


@_program("throw", 65)
def _throw(c: _Context, a: _Body, b: _Body | None) -> None:
    wind = c.pulse(0.35, 0.15)
    release = c.pulse(0.58, 0.1) * np.minimum(c.amp, 1.1)
    arm = a.dom_arm
    arm.t1 = _blend(arm.t1, 2.2, wind)
    arm.p1 = _blend(arm.p1, 2.4, wind)
    arm.p1 = _blend(arm.p1, 0.0, release)
    arm.t1 = _blend(arm.t1, 1.9, release)
    arm.t2 = _blend(arm.t2, 2.9, wind)
    arm.p2 = _blend(arm.p2, 2.8, wind)
    arm.t2 = _blend(arm.t2, 1.5, release)
    arm.p2 = _blend(arm.p2, 0.0, release)
    a.yaw = 0.5 * wind - 0.4 * release
    a.off_leg.t1 = a.off_leg.t1 + 0.5 * wind
    a.off_leg.p1 = _blend(a.off_leg.p1, 0.0, wind)


@_program("point forward", 70)
def _point(c: _Context, a: _Body, b: _Body | None) -> None:
    h = c.hold(0.1)
    arm = a.dom_arm
    arm.t1 = _blend(arm.t1, 1.6, h)
    arm.p1 = _blend(arm.p1, 0.15, h)
    arm.t2 = _blend(arm.t2, 1.6, h)
    arm.p2 = _blend(arm.p2, 0.1, h)


@_program("turn torso", 80)
def _turn(c: _Context, a: _Body, b: _Body | None) -> None:
    h = c.hold(0.08)
    a.yaw = 0.75 * c.osc(0.55) * h * c.amp
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = _blend(arm.t1, 0.5, h)
        arm.p1 = _blend(arm.p1, 1.45, h)
        arm.t2 = _blend(arm.t2, 1.6, h)
        arm.p2 = _blend(arm.p2, 0.2, h)


@_program("hug", 80, two_person=True)
def _hug(c: _Context, a: _Body, b: _Body | None) -> None:
    assert b is not None  # a two-person program
    h = c.hold(0.18)
    for body in (a, b):
        for arm in (body.dom_arm, body.off_arm):
            arm.t1 = _blend(arm.t1, 1.35, h)
            arm.p1 = _blend(arm.p1, 0.7, h)
            arm.t2 = _blend(arm.t2, 1.55, h)
            arm.p2 = _blend(arm.p2, -1.2, h)
        body.forward = 0.28 * h


@_program("give object", 75, two_person=True)
def _give(c: _Context, a: _Body, b: _Body | None) -> None:
    assert b is not None  # a two-person program
    give = c.pulse(0.45, 0.22)
    take = c.pulse(0.55, 0.2)
    for body, w in ((a, give), (b, take)):
        arm = body.dom_arm
        arm.t1 = _blend(arm.t1, 1.2, w)
        arm.p1 = _blend(arm.p1, -0.1, w)
        arm.t2 = _blend(arm.t2, 1.35, w)
        arm.p2 = _blend(arm.p2, -0.15, w)
        body.pitch = 0.12 * w


# Idle arm postures (t1, p1, t2, p2) that a body holds when its program leaves an arm alone, and
# how often: they make the arms that carry no class information differ between samples.
IDLE_ARMS = np.array([
    [0.0, 0.9, 0.0, 0.3],  # hanging (plus the subject's habitual hang and elbow bend)
    [0.7, 1.8, 0.73, -1.4],  # hand on the hip
    [0.3, 0.3, 1.2, -0.9],  # hand in front of the belly
    [0.3, 2.8, 0.9, -2.2],  # hand behind the back
])
IDLE_ARM_PROBS = (0.55, 0.2, 0.15, 0.1)

# Brief gestures (t1, p1, t2, p2) that an arm the program leaves alone makes at a random moment:
# distractors that raw-pose matching cannot tell from the action, but a learned model can ignore.
GESTURES = np.array([
    [2.0, 1.0, 2.6, -1.6],  # scratch the head
    [0.5, 0.2, 2.3, -1.3],  # hand to the chest
    [0.4, 0.3, 1.6, -0.8],  # look at the watch
    [1.2, 0.6, 1.5, 0.2],  # a vague gesture forward
])


def _restyle(
    ctx: _Context, body: _Body, rest: np.ndarray, rng: np.random.Generator, spec: "SyntheticSpec"
) -> None:
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
        w = _smoothstep((ctx.u - start) / 0.07) * _smoothstep((start + duration - ctx.u) / 0.07)
        w *= idle[:, None]
        if k < 2:
            pose = GESTURES[rng.integers(0, len(GESTURES), n)] + rng.normal(0.0, 0.1, (n, 4))
            for a, name in enumerate(("t1", "p1", "t2", "p2")):
                setattr(limb, name, _blend(getattr(limb, name), pose[:, a, None], w))
        else:  # step out sideways and back
            limb.t1 = limb.t1 + 0.35 * w
            limb.p1 = _blend(limb.p1, np.pi / 2, w)


# ---------------------------------------------------------------------------------------------
# Forward kinematics
# ---------------------------------------------------------------------------------------------

# Bone lengths of a 1.75 m adult (metres); subjects scale all of them and jitter each a little.
_BONES = {
    "spine_low": 0.25, "spine_up": 0.24, "neck": 0.09, "head": 0.15, "shoulder": 0.19,
    "upper_arm": 0.29, "forearm": 0.26, "hand": 0.08, "hand_tip": 0.07, "thumb": 0.05,
    "hip": 0.09, "thigh": 0.43, "shin": 0.42, "foot": 0.14, "ankle": 0.08,
}
_BONE_NAMES = tuple(_BONES)


def _direction(t: np.ndarray, p: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Unit vector (..., 3) in the body frame (x = the body's left, y = up, z = forward)."""
    st = np.sin(t)
    return np.stack([side * st * np.sin(p), -np.cos(t), st * np.cos(p)], axis=-1)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


MIRROR = np.array(NTU25.mirror)  # NTU-25 joints that trade places when a body is mirrored left <-> right


def _forward_kinematics(body: _Body, bones: np.ndarray) -> np.ndarray:
    """Joint positions (n, T, 25, 3) of a right-handed body in its own frame, feet on the floor.

    The dominant limbs are the right ones; left-handed subjects are mirrored afterwards, which
    mirrors every program (torso turns and leans included) at once.
    """
    n, t_len = body.pitch.shape
    length = {name: bones[:, i, None, None] for i, name in enumerate(_BONE_NAMES)}  # (n, 1, 1)
    right, left = -np.ones((1, 1)), np.ones((1, 1))
    local = np.zeros((n, t_len, NUM_JOINTS, 3))  # upper body in the torso frame

    def bone(name: str, direction: np.ndarray) -> np.ndarray:
        return length[name] * direction

    local[:, :, 1] = bone("spine_low", np.array([0.0, 1.0, 0.0]))
    local[:, :, 20] = local[:, :, 1] + bone("spine_up", np.array([0.0, 1.0, 0.0]))
    local[:, :, 2] = local[:, :, 20] + bone("neck", np.array([0.0, 1.0, 0.08]))
    local[:, :, 3] = local[:, :, 2] + bone("head", np.array([0.0, 1.0, 0.12]))
    for arm, side, (j_sh, j_el, j_wr, j_ha, j_tip, j_th) in (
        (body.dom_arm, right, (8, 9, 10, 11, 23, 24)),
        (body.off_arm, left, (4, 5, 6, 7, 21, 22)),
    ):
        upper = _direction(arm.t1, arm.p1, side)
        lower = _direction(arm.t2, arm.p2, side)
        local[:, :, j_sh] = local[:, :, 20] + bone("shoulder", np.array([side[0, 0], -0.15, 0.0]))
        local[:, :, j_el] = local[:, :, j_sh] + bone("upper_arm", upper)
        local[:, :, j_wr] = local[:, :, j_el] + bone("forearm", lower)
        local[:, :, j_ha] = local[:, :, j_wr] + bone("hand", lower)
        local[:, :, j_tip] = local[:, :, j_ha] + bone("hand_tip", lower)
        inward = np.array([-0.6 * side[0, 0], 0.0, 0.3])
        local[:, :, j_th] = local[:, :, j_ha] + bone("thumb", 0.5 * lower + inward)
    # torso: turn and lean toward the dominant (right, -x) side, bend forward (+z)
    torso = _rot_y(-body.yaw) @ _rot_x(body.pitch) @ _rot_z(body.roll)
    joints = local @ torso.swapaxes(-1, -2)

    for leg, side, (j_hip, j_knee, j_ankle, j_foot) in (
        (body.dom_leg, right, (16, 17, 18, 19)),
        (body.off_leg, left, (12, 13, 14, 15)),
    ):
        joints[:, :, j_hip] = bone("hip", np.array([side[0, 0], -0.6, 0.0]))
        joints[:, :, j_knee] = joints[:, :, j_hip] + bone("thigh", _direction(leg.t1, leg.p1, side))
        joints[:, :, j_ankle] = joints[:, :, j_knee] + bone("shin", _direction(leg.t2, leg.p2, side))
        joints[:, :, j_foot] = joints[:, :, j_ankle] + bone("foot", np.array([0.0, -0.35, 0.94]))

    # stand on the lower ankle, then add jumps and steps
    floor = np.minimum(joints[:, :, 14, 1], joints[:, :, 18, 1]) - length["ankle"][..., 0]
    joints[..., 1] += (body.lift - floor)[..., None]
    joints[..., 2] += body.forward[..., None]
    return joints


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def _assign(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced (label, subject index, view index) per sample.

    The k-th sample of a class gets subject perm_c[k % S] and view (k % S + k // S) % V, so every
    class meets every subject in every view as early as possible, also for small `num_samples`.
    """
    n, c_count, s_count, v_count = spec.num_samples, spec.num_classes, spec.num_subjects, spec.num_views
    labels = np.arange(n) % c_count
    k = np.arange(n) // c_count
    perms = np.stack([rng.permutation(s_count) for _ in range(c_count)])
    subjects = perms[labels, k % s_count]
    views = (k % s_count + k // s_count) % v_count
    return labels, subjects, views


def _interaction_partners(num_subjects: int) -> np.ndarray:
    """Each subject's partner in two-person actions: the next subject of the same xsub half, so
    that no test subject appears in a training sample."""
    ids = np.arange(num_subjects)
    partner = np.empty(num_subjects, dtype=int)
    for half in (ids[ids % 2 == 0], ids[ids % 2 == 1]):
        partner[half] = np.roll(half, -1) if len(half) > 1 else half
    return partner


@dataclass
class _Cast:
    """The performers: body, habits and handedness of every subject (index 0..S-1)."""

    bones: np.ndarray  # (S, len(_BONES)) metres
    tempo: np.ndarray  # (S,) speed factor
    amplitude: np.ndarray  # (S,) movement size factor
    left_handed: np.ndarray  # (S,) bool
    hang: np.ndarray  # (S,) habitual arm hang (rad)
    elbow: np.ndarray  # (S,) habitual elbow bend (rad)
    stance: np.ndarray  # (S,) habitual leg spread (rad)
    partner: np.ndarray  # (S,) the subject index of the partner in two-person actions


def _cast(spec: SyntheticSpec, rng: np.random.Generator) -> _Cast:
    s_count = spec.num_subjects
    size = rng.uniform(*spec.size_range, s_count)
    proportions = rng.lognormal(0.0, 0.07, (s_count, len(_BONES)))
    left_handed = np.zeros(s_count, dtype=bool)
    for half in (np.arange(0, s_count, 2), np.arange(1, s_count, 2)):  # some in each xsub half
        left_handed[rng.choice(half, max(1, round(0.3 * len(half))), replace=False)] = True
    return _Cast(
        bones=size[:, None] * np.array(list(_BONES.values())) * proportions,
        tempo=rng.uniform(0.75, 1.3, s_count),
        amplitude=rng.uniform(0.7, 1.25, s_count),
        left_handed=left_handed,
        hang=rng.uniform(0.05, 0.3, s_count),
        elbow=rng.uniform(0.0, 0.35, s_count),
        stance=rng.uniform(0.0, 0.15, s_count),
        partner=_interaction_partners(s_count),
    )


def _timing(
    spec: SyntheticSpec, rng: np.random.Generator, cast: _Cast, labels: np.ndarray, subjects: np.ndarray
) -> tuple[np.ndarray, _Context]:
    """Per-sample clip lengths and the program clocks: tempo, a smooth monotonic time warp (the
    speed varies within the clip, the ends stay put), phase and the window of the action."""
    n, t_max = len(labels), spec.max_frames
    base_frames = np.array([PROGRAMS[name][2] for name in spec.classes])[labels]
    tempo = cast.tempo[subjects] * rng.uniform(0.9, 1.1, n)
    lengths = np.round(base_frames * rng.uniform(0.8, 1.2, n) / tempo)
    lengths = np.clip(lengths, spec.min_frames, t_max).astype(np.int64)
    frames = np.arange(t_max)[None, :].astype(float)
    span = lengths[:, None] - 1.0
    cycles = rng.integers(1, 3, n)[:, None]
    warp = rng.uniform(-spec.time_warp, spec.time_warp, n)[:, None] * span / (2 * np.pi * cycles)
    warped = frames + warp * np.sin(2 * np.pi * cycles * np.minimum(frames / span, 1.0))
    action = rng.uniform(*spec.action_span, n)[:, None]
    start = rng.uniform(0.0, 1.0, (n, 1)) * (1.0 - action)
    ctx = _Context(
        u=np.minimum(warped / span, 1.0),
        t=warped / FPS * tempo[:, None],
        amp=(cast.amplitude[subjects] * rng.uniform(0.85, 1.15, n))[:, None],
        phase=rng.uniform(0, 2 * np.pi, (n, 1)),
        freq=rng.uniform(0.8, 1.25, (n, 1)),
        start=start,
        end=start + action,
    )
    return lengths, ctx


def _rest_postures(rng: np.random.Generator, cast: _Cast, who: np.ndarray) -> np.ndarray:
    """(n, body, limb, angle) idle postures of every body and limb: each arm one of `IDLE_ARMS`
    ("hanging" in the subject's habit), legs in the subject's stance."""
    idle = rng.choice(len(IDLE_ARMS), size=who.shape + (2,), p=IDLE_ARM_PROBS)
    arms = IDLE_ARMS[idle] + rng.normal(0.0, 0.08, who.shape + (2, 4))
    hanging = idle == 0
    arms[..., 0] += np.where(hanging, cast.hang[who][..., None], 0.0)
    arms[..., 2] += np.where(hanging, (cast.hang + cast.elbow)[who][..., None], 0.0)
    stance = cast.stance[who] + rng.normal(0.0, 0.03, who.shape)
    straight = np.full_like(stance, np.pi / 2)
    legs = np.stack([stance, straight, np.full_like(stance, 0.02), straight], -1)
    return np.concatenate([arms, np.stack([legs, legs], -2)], -2)


def _perform(
    spec: SyntheticSpec, rng: np.random.Generator, cast: _Cast, labels: np.ndarray, subjects: np.ndarray,
    clock: _Context,
) -> tuple[np.ndarray, np.ndarray]:
    """Every body's joints in the room (floor y = 0; the camera of yaw 0 looks along +z).

    Returns (rows (R, T, V, 3), sample of each row): rows 0..n-1 are the first bodies, the rest the
    second bodies of the two-person samples, so that absent bodies cost nothing.
    """
    n = len(labels)
    two_person = np.array([PROGRAMS[name][1] for name in spec.classes])[labels]
    pair_rows = np.full(n, -1)
    pair_rows[two_person] = n + np.arange(int(two_person.sum()))
    who_all = np.stack([subjects, cast.partner[subjects]], -1)  # (n, 2)
    rest_all = _rest_postures(rng, cast, who_all)
    sway_all = rng.normal(0.0, 1.0, (n, 2, 3)) * np.array([0.04, 0.12, 0.04])  # pitch, yaw, roll
    sway_freq, sway_phase = rng.uniform(0.3, 1.2, (n, 2, 1)), rng.uniform(0, 2 * np.pi, (n, 2, 1))
    facing_std = np.deg2rad(spec.facing_jitter_deg)
    room = np.empty((n + int(two_person.sum()), spec.max_frames, NUM_JOINTS, 3), dtype=np.float32)
    for label, name in enumerate(spec.classes):
        idx = np.flatnonzero(labels == label)
        if not len(idx):
            continue
        program, pair, _ = PROGRAMS[name]
        ctx = clock.take(idx)
        bodies = [_Body(ctx.u.shape, rest_all[idx, m]) for m in range(2 if pair else 1)]
        program(ctx, bodies[0], bodies[1] if pair else None)
        distance = rng.uniform(0.85, 1.15, len(idx))  # between the two bodies, before they step
        for m, body in enumerate(bodies):
            _restyle(ctx, body, rest_all[idx, m], rng, spec)
            sway = np.sin(2 * np.pi * sway_freq[idx, m] * ctx.u + sway_phase[idx, m])  # (n, T)
            body.pitch = body.pitch + sway * sway_all[idx, m, 0:1]
            body.yaw = body.yaw + sway * sway_all[idx, m, 1:2]
            body.roll = body.roll + sway * sway_all[idx, m, 2:3]
            who = who_all[idx, m]
            joints = _forward_kinematics(body, cast.bones[who])
            mirror = cast.left_handed[who]
            joints[mirror] = joints[mirror][:, :, MIRROR] * np.array([-1.0, 1.0, 1.0])
            offset = np.zeros((len(idx), 3))
            if pair:  # face each other across the x axis of the room
                facing = (np.pi / 2 if m == 0 else -np.pi / 2) + rng.normal(0.0, facing_std, len(idx))
                offset[:, 0] = (m - 0.5) * distance
            else:  # face the yaw-0 camera
                facing = np.pi + rng.normal(0.0, facing_std, len(idx))
            turn = _rot_y(facing).swapaxes(-1, -2)[:, None]  # row vectors: x @ R^T
            room[pair_rows[idx] if m else idx] = joints @ turn + offset[:, None, None, :]
    return room, np.concatenate([np.arange(n), np.flatnonzero(two_person)])


def _film(
    spec: SyntheticSpec, rng: np.random.Generator, room: np.ndarray, sample_of_row: np.ndarray,
    views: np.ndarray, lengths: np.ndarray,
) -> np.ndarray:
    """Kinect-like camera coordinates (x, y up, z depth) of every row, with the sensor's faults:
    noise (1.5x on the hands, which Kinect tracks worst), a few dropped joints, zero padding."""
    n = len(views)
    yaw = np.deg2rad(np.asarray(spec.view_yaw_deg))[views]
    yaw = yaw + rng.normal(0.0, np.deg2rad(spec.view_jitter_deg), n)
    tilt = np.deg2rad(np.asarray(spec.view_tilt_deg))[views] + rng.normal(0.0, np.deg2rad(2.0), n)
    camera = (_rot_x(tilt) @ _rot_y(yaw)).swapaxes(-1, -2).astype(np.float32)
    sideways = rng.normal(0.0, spec.position_jitter, n)
    height, depth = rng.uniform(0.7, 1.1, n), rng.uniform(2.6, 3.6, n)
    shift = np.stack([sideways, -height, depth], -1)  # the floor lies `height` below the camera
    cam = (room.reshape(len(room), -1, 3) @ camera[sample_of_row]).reshape(room.shape)
    cam += shift.astype(np.float32)[sample_of_row, None, None, :]

    joint_noise = np.full((NUM_JOINTS, 1), spec.noise_std, dtype=np.float32)
    joint_noise[[7, 11, 21, 22, 23, 24]] *= 1.5
    cam += rng.standard_normal(cam.shape, dtype=np.float32) * joint_noise
    frames = np.arange(spec.max_frames)[None, :]
    dropped = rng.random(n) < spec.drop_prob
    drop_start = (rng.random(n) * (lengths - 8))[:, None]
    drop_frames = (frames >= drop_start) & (frames < drop_start + rng.integers(1, 9, n)[:, None])
    drop_joints = rng.random((n, NUM_JOINTS)).argsort(axis=1) < rng.integers(1, 4, n)[:, None]
    lost = (dropped[:, None] & drop_frames)[:, :, None] & drop_joints[:, None, :]  # (n, T, V)
    valid = frames < lengths[:, None]
    cam *= (valid[:, :, None] & ~lost)[sample_of_row, ..., None]
    return cam


def make_synthetic(spec: SyntheticSpec = SyntheticSpec(), seed: int = 0) -> SkeletonData:
    """Generate the dataset (pure: the same spec and seed give identical arrays)."""
    unknown = [name for name in spec.classes if name not in PROGRAMS]
    if unknown:
        raise ValueError(f"unknown synthetic motion programs {unknown}; known: {sorted(PROGRAMS)}")
    if len(spec.view_tilt_deg) != spec.num_views:
        raise ValueError("view_yaw_deg and view_tilt_deg must have one entry per view")
    if not 10 <= spec.min_frames <= spec.max_frames:
        raise ValueError("need 10 <= min_frames <= max_frames")
    if spec.num_subjects < 2 or spec.num_views < 2:
        raise ValueError("the xsub and xview splits need at least 2 subjects and 2 views")
    rng = np.random.default_rng(seed)
    cast = _cast(spec, rng)
    labels, subjects, views = _assign(spec, rng)
    lengths, clock = _timing(spec, rng, cast, labels, subjects)
    room, sample_of_row = _perform(spec, rng, cast, labels, subjects, clock)
    rows = _film(spec, rng, room, sample_of_row, views, lengths).transpose(0, 3, 1, 2)  # (R, C, T, V)
    n = spec.num_samples
    data = np.zeros((n, 3, spec.max_frames, NUM_JOINTS, 2), dtype=np.float32)  # (N, C, T, V, M)
    data[..., 0] = rows[:n]
    data[sample_of_row[n:], ..., 1] = rows[n:]

    subject_ids, view_ids = subjects + 1, views + 1
    return SkeletonData(
        name="synthetic",
        data=data,
        lengths=lengths,
        labels=labels.astype(np.int64),
        num_classes=spec.num_classes,
        layout="ntu25",
        splits={"xsub": subject_ids % 2 == 1, "xview": view_ids != 1},
        default_split="xsub",
        source=f"synthetic(seed={seed})",
        metadata={"subject": subject_ids, "view": view_ids},
    )


@functools.lru_cache(maxsize=8)
def _cached(spec: SyntheticSpec, seed: int) -> SkeletonData:
    data = make_synthetic(spec, seed)
    for arr in (data.data, data.lengths, data.labels, *data.splits.values(), *data.metadata.values()):
        arr.flags.writeable = False  # shared by every load in this process
    data.scan()  # once per process: every load shares it (generated data has no file to cache it by)
    return data


def load_synthetic(spec: SyntheticSpec, seed: int, name: str = "synthetic") -> SkeletonData:
    """`make_synthetic`, cached per (spec, seed): a fresh container over shared read-only arrays."""
    data = _cached(spec, seed)
    return dataclasses.replace(
        data, name=name, splits=dict(data.splits), metadata=dict(data.metadata))


@register_dataset("synthetic", "built-in synthetic NTU-25 actions (10 classes, 20 subjects, 3 views)")
def synthetic_dataset(cfg: DataConfig) -> SkeletonData:
    return load_synthetic(SyntheticSpec(num_samples=cfg.synthetic_samples), SOURCE_SEED, "synthetic")


@register_dataset("synthetic-target", "synthetic transfer target: other actions, subjects and views")
def synthetic_target_dataset(cfg: DataConfig) -> SkeletonData:
    spec = dataclasses.replace(TARGET_SPEC, num_samples=cfg.synthetic_samples)
    return load_synthetic(spec, TARGET_SEED, "synthetic-target")


# ---------------------------------------------------------------------------------------------
# Difficulty
# ---------------------------------------------------------------------------------------------


def resize_valid(data: np.ndarray, lengths: np.ndarray, frames: int = 32) -> np.ndarray:
    """Linearly resample each sample's valid frames to `frames` frames: (N, C, frames, V, M)."""
    data = np.asarray(data, dtype=np.float32)
    pos = (lengths[:, None] - 1) * np.linspace(0.0, 1.0, frames)[None, :]  # (N, frames)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, lengths[:, None] - 1)
    w = (pos - lo).astype(np.float32)[:, None, :, None, None]
    rows = np.arange(len(data))[:, None]
    take = lambda idx: data[rows, :, idx].transpose(0, 2, 1, 3, 4)  # noqa: E731
    return take(lo) * (1 - w) + take(hi) * w


def raw_pose_knn_accuracy(data: SkeletonData, split: str | None = None, frames: int = 32) -> float:
    """Cosine 1-NN accuracy on raw poses: how much a method that learns nothing already gets.

    Every sample's valid part is resized to `frames` frames, flattened and L2-normalised; each test
    sample takes the label of its most similar training sample.
    """
    train, test = data.split(split)
    x = resize_valid(data.data, data.lengths, frames).reshape(len(data.data), -1)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-8
    nearest = np.argmax(x[test.indices] @ x[train.indices].T, axis=1)
    return float(np.mean(train.labels[nearest] == test.labels))
