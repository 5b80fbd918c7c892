"""The generator: who performs what in which view (balanced), timing, performance, filming, and
the two registered datasets; plus the raw-pose kNN difficulty measure."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from halp_bench.config import DataConfig
from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.synthetic.body import BONES, IDLE_ARM_PROBS, IDLE_ARMS, MIRROR, Body, forward_kinematics, restyle, rot_x, rot_y
from halp_bench.datasets.synthetic.programs import PROGRAMS, Context
from halp_bench.datasets.synthetic.spec import FPS, NUM_JOINTS, SOURCE_SEED, TARGET_SEED, TARGET_SPEC, SyntheticSpec
from halp_bench.registry import register_dataset


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

    bones: np.ndarray  # (S, len(BONES)) metres
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
    proportions = rng.lognormal(0.0, 0.07, (s_count, len(BONES)))
    left_handed = np.zeros(s_count, dtype=bool)
    for half in (np.arange(0, s_count, 2), np.arange(1, s_count, 2)):  # some in each xsub half
        left_handed[rng.choice(half, max(1, round(0.3 * len(half))), replace=False)] = True
    return _Cast(
        bones=size[:, None] * np.array(list(BONES.values())) * proportions,
        tempo=rng.uniform(0.75, 1.3, s_count),
        amplitude=rng.uniform(0.7, 1.25, s_count),
        left_handed=left_handed,
        hang=rng.uniform(0.05, 0.3, s_count),
        elbow=rng.uniform(0.0, 0.35, s_count),
        stance=rng.uniform(0.0, 0.15, s_count),
        partner=_interaction_partners(s_count),
    )


def _timing(spec: SyntheticSpec, rng: np.random.Generator, cast: _Cast, labels: np.ndarray, subjects: np.ndarray) -> tuple[np.ndarray, Context]:
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
    ctx = Context(
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
    spec: SyntheticSpec, rng: np.random.Generator, cast: _Cast, labels: np.ndarray, subjects: np.ndarray, clock: Context
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
        bodies = [Body(ctx.u.shape, rest_all[idx, m]) for m in range(2 if pair else 1)]
        program(ctx, bodies[0], bodies[1] if pair else None)
        distance = rng.uniform(0.85, 1.15, len(idx))  # between the two bodies, before they step
        for m, body in enumerate(bodies):
            restyle(ctx, body, rest_all[idx, m], rng, spec)
            sway = np.sin(2 * np.pi * sway_freq[idx, m] * ctx.u + sway_phase[idx, m])  # (n, T)
            body.pitch = body.pitch + sway * sway_all[idx, m, 0:1]
            body.yaw = body.yaw + sway * sway_all[idx, m, 1:2]
            body.roll = body.roll + sway * sway_all[idx, m, 2:3]
            who = who_all[idx, m]
            joints = forward_kinematics(body, cast.bones[who])
            mirror = cast.left_handed[who]
            joints[mirror] = joints[mirror][:, :, MIRROR] * np.array([-1.0, 1.0, 1.0])
            offset = np.zeros((len(idx), 3))
            if pair:  # face each other across the x axis of the room
                facing = (np.pi / 2 if m == 0 else -np.pi / 2) + rng.normal(0.0, facing_std, len(idx))
                offset[:, 0] = (m - 0.5) * distance
            else:  # face the yaw-0 camera
                facing = np.pi + rng.normal(0.0, facing_std, len(idx))
            turn = rot_y(facing).swapaxes(-1, -2)[:, None]  # row vectors: x @ R^T
            room[pair_rows[idx] if m else idx] = joints @ turn + offset[:, None, None, :]
    return room, np.concatenate([np.arange(n), np.flatnonzero(two_person)])


def _film(spec: SyntheticSpec, rng: np.random.Generator, room: np.ndarray, sample_of_row: np.ndarray, views: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Kinect-like camera coordinates (x, y up, z depth) of every row, with the sensor's faults:
    noise (1.5x on the hands, which Kinect tracks worst), a few dropped joints, zero padding."""
    n = len(views)
    yaw = np.deg2rad(np.asarray(spec.view_yaw_deg))[views]
    yaw = yaw + rng.normal(0.0, np.deg2rad(spec.view_jitter_deg), n)
    tilt = np.deg2rad(np.asarray(spec.view_tilt_deg))[views] + rng.normal(0.0, np.deg2rad(2.0), n)
    camera = (rot_x(tilt) @ rot_y(yaw)).swapaxes(-1, -2).astype(np.float32)
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


def make_synthetic(spec: SyntheticSpec = SyntheticSpec(), seed: int = 0) -> SkeletonData:  # noqa: B008
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
    return dataclasses.replace(data, name=name, splits=dict(data.splits), metadata=dict(data.metadata))


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
    take = lambda idx: data[rows, :, idx].transpose(0, 2, 1, 3, 4)
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
