"""The motion programs: one function per class that moves a body's limbs over normalised clip
time, registered in `PROGRAMS` with whether it needs two people and its base length."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from halp_bench.datasets.synthetic.body import Body


@dataclass
class Context:
    """What a motion program may read: time in two clocks, and per-sample randomness."""

    u: np.ndarray  # (n, T) normalised clip time, 0 at the first frame and 1 at the last valid one
    t: np.ndarray  # (n, T) action time in seconds (frame / FPS * tempo)
    amp: np.ndarray  # (n, 1) amplitude factor
    phase: np.ndarray  # (n, 1) radians
    freq: np.ndarray  # (n, 1) frequency jitter factor
    start: np.ndarray  # (n, 1) normalised start of the action
    end: np.ndarray  # (n, 1) normalised end of the action

    def take(self, idx: np.ndarray) -> Context:
        return Context(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})

    def osc(self, hz: float) -> np.ndarray:
        return np.sin(2 * np.pi * hz * self.freq * self.t + self.phase)

    def cycle(self, hz: float) -> np.ndarray:
        """0 at rest, 1 at the peak: repeated actions that start from the rest pose."""
        return 0.5 - 0.5 * np.cos(2 * np.pi * hz * self.freq * self.t + self.phase)

    def hold(self, ramp: float = 0.12) -> np.ndarray:
        """0 -> 1 -> 0 over [start, end]: reach a pose, hold it (or oscillate around it), return."""
        return smoothstep((self.u - self.start) / ramp) * smoothstep((self.end - self.u) / ramp)

    def pulse(self, centre: np.ndarray | float, width: float) -> np.ndarray:
        """A single stroke (kick, push, throw) centred in the action window."""
        c = self.start + (self.end - self.start) * centre
        return np.exp(-(((self.u - c) / width) ** 2))


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def blend(limb_value: np.ndarray, target: np.ndarray | float, weight: np.ndarray) -> np.ndarray:
    return limb_value + (target - limb_value) * weight


Program = Callable[[Context, "Body", "Body | None"], None]
PROGRAMS: dict[str, tuple[Program, bool, int]] = {}  # name -> (program, two-person, base frames)


def program(name: str, base_frames: int, two_person: bool = False) -> Callable[[Program], Program]:
    def add(fn: Program) -> Program:
        PROGRAMS[name] = (fn, two_person, base_frames)
        return fn

    return add


# -- source classes ---------------------------------------------------------------------------


@program("wave", 80)
def _wave(c: Context, a: Body, b: Body | None) -> None:
    """The hand of "raise hand", swaying side to side: only the dynamics tell the two apart."""
    h, arm, sway = c.hold(), a.dom_arm, c.amp * c.osc(2.0)
    arm.t1 = blend(arm.t1, 2.3, h)
    arm.p1 = blend(arm.p1, 1.2 + 0.15 * sway, h)
    arm.t2 = blend(arm.t2, 2.55 + 0.7 * sway, h)
    arm.p2 = blend(arm.p2, 1.3, h)


@program("raise hand", 75)
def _raise_hand(c: Context, a: Body, b: Body | None) -> None:
    h, arm = c.hold(), a.dom_arm
    arm.t1 = blend(arm.t1, 2.3, h)
    arm.p1 = blend(arm.p1, 1.2, h)
    arm.t2 = blend(arm.t2, 2.65, h)
    arm.p2 = blend(arm.p2, 1.3, h)


@program("kick", 60)
def _kick(c: Context, a: Body, b: Body | None) -> None:
    chamber = c.pulse(0.42, 0.16)
    strike = c.pulse(0.5, 0.09) * np.minimum(c.amp, 1.1)
    leg = a.dom_leg
    leg.t1 = leg.t1 + 1.2 * chamber + 0.25 * strike
    leg.p1 = blend(leg.p1, 0.0, np.minimum(3 * np.maximum(chamber, strike), 1.0))
    leg.t2 = leg.t2 + 0.2 * chamber + 1.1 * strike
    leg.p2 = blend(leg.p2, 0.0, np.minimum(3 * strike, 1.0))
    for arm in (a.dom_arm, a.off_arm):  # balance
        arm.t1 = arm.t1 + 0.5 * chamber
        arm.p1 = blend(arm.p1, 1.4, chamber)
    a.pitch = -0.15 * chamber


@program("squat", 80)
def _squat(c: Context, a: Body, b: Body | None) -> None:
    down = c.cycle(0.45) * c.hold(0.05) * np.minimum(c.amp, 1.05)
    for leg in (a.dom_leg, a.off_leg):
        leg.t1 = blend(leg.t1, 1.35, down)
        leg.p1 = blend(leg.p1, 0.25, down)
        leg.t2 = blend(leg.t2, 0.55, down)
        leg.p2 = blend(leg.p2, np.pi, down)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = blend(arm.t1, 1.5, down)
        arm.p1 = blend(arm.p1, 0.1, down)
        arm.t2 = blend(arm.t2, 1.5, down)
        arm.p2 = blend(arm.p2, 0.05, down)
    a.pitch = 0.45 * down


def _in_place(c: Context, a: Body, hz: float, knee: float, elbow: float) -> None:
    """Alternate the legs (thigh up, knee bent) with the arms swinging against them."""
    h = c.hold(0.08)
    s = c.osc(hz) * h * c.amp
    for leg, sign in ((a.dom_leg, 1.0), (a.off_leg, -1.0)):
        up = np.maximum(sign * s, 0.0)
        leg.t1 = leg.t1 + 1.0 * up
        leg.p1 = blend(leg.p1, 0.0, np.minimum(4 * up, 1.0))
        leg.t2 = leg.t2 + knee * up
        leg.p2 = blend(leg.p2, np.pi, np.minimum(4 * up, 1.0))
    for arm, sign in ((a.dom_arm, -1.0), (a.off_arm, 1.0)):
        arm.t1 = blend(arm.t1, 0.55 * sign * s, h)
        arm.p1 = blend(arm.p1, 0.0, h)
        arm.t2 = blend(arm.t2, 0.9 * sign * s + elbow, h)
        arm.p2 = blend(arm.p2, 0.0, h)


@program("walk in place", 85)
def _walk(c: Context, a: Body, b: Body | None) -> None:
    _in_place(c, a, hz=0.9, knee=0.25, elbow=0.6)


@program("jog in place", 70)
def _jog(c: Context, a: Body, b: Body | None) -> None:
    _in_place(c, a, hz=1.7, knee=0.6, elbow=0.9)


@program("punch", 65)
def _punch(c: Context, a: Body, b: Body | None) -> None:
    guard = c.hold(0.1)
    hit = np.maximum(c.osc(1.1), 0.0) ** 3 * guard * np.minimum(c.amp, 1.1)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = blend(arm.t1, 0.55, guard)
        arm.p1 = blend(arm.p1, 0.5, guard)
        arm.t2 = blend(arm.t2, 2.35, guard)
        arm.p2 = blend(arm.p2, -0.1, guard)
    arm = a.dom_arm
    arm.t1 = arm.t1 + 1.0 * hit
    arm.p1 = blend(arm.p1, -0.1, hit)
    arm.t2 = arm.t2 - 0.8 * hit
    a.yaw = -0.3 * hit  # the shoulder drives forward


@program("clap", 65)
def _clap(c: Context, a: Body, b: Body | None) -> None:
    h = c.hold()
    close = c.cycle(1.8) * c.amp
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = blend(arm.t1, 1.1, h)
        arm.p1 = blend(arm.p1, 0.7 - 0.45 * close, h)
        arm.t2 = blend(arm.t2, 1.7, h)
        arm.p2 = blend(arm.p2, 0.9 - 1.55 * close, h)


@program("handshake", 75, two_person=True)
def _handshake(c: Context, a: Body, b: Body | None) -> None:
    assert b is not None  # a two-person program
    h = c.hold(0.15)
    shake = 0.18 * c.osc(2.2) * h
    for body in (a, b):
        arm = body.dom_arm
        arm.t1 = blend(arm.t1, 0.8, h)
        arm.p1 = blend(arm.p1, -0.15, h)
        arm.t2 = blend(arm.t2, 1.45, h) + shake
        arm.p2 = blend(arm.p2, -0.25, h)
        body.forward = 0.08 * h


@program("push", 60, two_person=True)
def _push(c: Context, a: Body, b: Body | None) -> None:
    assert b is not None  # a two-person program
    reach = c.pulse(0.45, 0.18)
    shove = smoothstep((c.u - c.start - 0.45 * (c.end - c.start)) / 0.15) * np.minimum(c.amp, 1.1)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = blend(arm.t1, 1.45, reach)
        arm.p1 = blend(arm.p1, 0.15, reach)
        arm.t2 = blend(arm.t2, 1.5, reach)
        arm.p2 = blend(arm.p2, 0.0, reach)
    a.forward = 0.15 * reach
    a.pitch = 0.2 * reach
    b.forward = -0.45 * shove  # the partner is pushed back ...
    b.pitch = -0.3 * shove * (1 - shove) * 4 - 0.05 * shove  # ... rocks backwards ...
    for arm in (b.dom_arm, b.off_arm):  # ... and throws the arms out
        arm.t1 = arm.t1 + 0.9 * shove * (1 - 0.5 * shove)
        arm.p1 = blend(arm.p1, 1.3, shove)


# -- target classes ---------------------------------------------------------------------------


@program("drink", 80)
def _drink(c: Context, a: Body, b: Body | None) -> None:
    h = c.hold(0.15)
    sip = 0.15 * c.osc(0.7) * h
    arm = a.dom_arm
    arm.t1 = blend(arm.t1, 0.75, h) + sip
    arm.p1 = blend(arm.p1, 0.35, h)
    arm.t2 = blend(arm.t2, 2.75, h)
    arm.p2 = blend(arm.p2, -0.6, h)
    a.pitch = -0.1 * h


@program("phone call", 85)
def _phone(c: Context, a: Body, b: Body | None) -> None:
    h = c.hold(0.1)
    arm = a.dom_arm
    arm.t1 = blend(arm.t1, 0.55, h)
    arm.p1 = blend(arm.p1, 1.2, h)
    arm.t2 = blend(arm.t2, 2.9, h)
    arm.p2 = blend(arm.p2, -1.4, h)
    a.roll = 0.12 * h + 0.05 * c.osc(0.3) * h


@program("jump", 60)
def _jump(c: Context, a: Body, b: Body | None) -> None:
    hop = c.cycle(1.0) * c.hold(0.05)
    air = np.maximum(hop - 0.55, 0.0) / 0.45
    crouch = np.maximum(0.5 - np.abs(hop - 0.35) * 2, 0.0) * 2
    for leg in (a.dom_leg, a.off_leg):
        leg.t1 = blend(leg.t1, 0.9, crouch)
        leg.p1 = blend(leg.p1, 0.2, crouch)
        leg.t2 = blend(leg.t2, 0.45, crouch)
        leg.p2 = blend(leg.p2, np.pi, crouch)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = arm.t1 + 1.8 * air - 0.4 * crouch
        arm.p1 = blend(arm.p1, 0.2, np.maximum(air, crouch))
    a.lift = 0.3 * air * np.minimum(c.amp, 1.1)
    a.pitch = 0.3 * crouch


@program("bow", 75)
def _bow(c: Context, a: Body, b: Body | None) -> None:
    h = c.pulse(0.5, 0.25) * np.minimum(c.amp, 1.1)
    a.pitch = 1.0 * h
    for arm in (a.dom_arm, a.off_arm):
        arm.p1 = blend(arm.p1, 1.5, h)


@program("side arm raise", 80)
def _side_raise(c: Context, a: Body, b: Body | None) -> None:
    up = c.cycle(0.6) * c.hold(0.05) * np.minimum(c.amp, 1.1)
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = blend(arm.t1, 2.5, up)
        arm.p1 = blend(arm.p1, np.pi / 2, up)
        arm.t2 = blend(arm.t2, 2.6, up)
        arm.p2 = blend(arm.p2, np.pi / 2, up)
    for leg in (a.dom_leg, a.off_leg):
        leg.t1 = leg.t1 + 0.2 * up


@program("throw", 65)
def _throw(c: Context, a: Body, b: Body | None) -> None:
    wind = c.pulse(0.35, 0.15)
    release = c.pulse(0.58, 0.1) * np.minimum(c.amp, 1.1)
    arm = a.dom_arm
    arm.t1 = blend(arm.t1, 2.2, wind)
    arm.p1 = blend(arm.p1, 2.4, wind)
    arm.p1 = blend(arm.p1, 0.0, release)
    arm.t1 = blend(arm.t1, 1.9, release)
    arm.t2 = blend(arm.t2, 2.9, wind)
    arm.p2 = blend(arm.p2, 2.8, wind)
    arm.t2 = blend(arm.t2, 1.5, release)
    arm.p2 = blend(arm.p2, 0.0, release)
    a.yaw = 0.5 * wind - 0.4 * release
    a.off_leg.t1 = a.off_leg.t1 + 0.5 * wind
    a.off_leg.p1 = blend(a.off_leg.p1, 0.0, wind)


@program("point forward", 70)
def _point(c: Context, a: Body, b: Body | None) -> None:
    h = c.hold(0.1)
    arm = a.dom_arm
    arm.t1 = blend(arm.t1, 1.6, h)
    arm.p1 = blend(arm.p1, 0.15, h)
    arm.t2 = blend(arm.t2, 1.6, h)
    arm.p2 = blend(arm.p2, 0.1, h)


@program("turn torso", 80)
def _turn(c: Context, a: Body, b: Body | None) -> None:
    h = c.hold(0.08)
    a.yaw = 0.75 * c.osc(0.55) * h * c.amp
    for arm in (a.dom_arm, a.off_arm):
        arm.t1 = blend(arm.t1, 0.5, h)
        arm.p1 = blend(arm.p1, 1.45, h)
        arm.t2 = blend(arm.t2, 1.6, h)
        arm.p2 = blend(arm.p2, 0.2, h)


@program("hug", 80, two_person=True)
def _hug(c: Context, a: Body, b: Body | None) -> None:
    assert b is not None  # a two-person program
    h = c.hold(0.18)
    for body in (a, b):
        for arm in (body.dom_arm, body.off_arm):
            arm.t1 = blend(arm.t1, 1.35, h)
            arm.p1 = blend(arm.p1, 0.7, h)
            arm.t2 = blend(arm.t2, 1.55, h)
            arm.p2 = blend(arm.p2, -1.2, h)
        body.forward = 0.28 * h


@program("give object", 75, two_person=True)
def _give(c: Context, a: Body, b: Body | None) -> None:
    assert b is not None  # a two-person program
    give = c.pulse(0.45, 0.22)
    take = c.pulse(0.55, 0.2)
    for body, w in ((a, give), (b, take)):
        arm = body.dom_arm
        arm.t1 = blend(arm.t1, 1.2, w)
        arm.p1 = blend(arm.p1, -0.1, w)
        arm.t2 = blend(arm.t2, 1.35, w)
        arm.p2 = blend(arm.p2, -0.15, w)
        body.pitch = 0.12 * w
