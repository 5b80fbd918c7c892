"""Skeleton normalisation: the official pre-normalisation (2s-AGCN
`data_gen/preprocess.py::pre_normalization`) that `prepare` applies, and the `data.normalize`
setting that applies it, or centring alone, to data brought as it is (imported files, `.npz`).

CMD and HaLP train on data normalised this way, so prepared datasets must match it to be
comparable. The four steps run in the original order, vectorised over samples and processed in
chunks so that a whole dataset (tens of thousands of (3, 300, 25, 2) samples, possibly a memmap)
takes seconds, not hours:

1. null frames: a person whose first frame is empty has its non-empty frames moved to the front;
   then the empty tail is filled by looping the frames before it;
2. subtract person 0's centre joint, per frame, from every person; empty joints stay zero;
3. rotate so that person 0's `z_bone` (hip -> spine) at frame 0 is parallel to +z;
4. rotate so that person 0's `x_bone` (left -> right shoulder, i.e. the original's
   `xaxis=[8, 4]`: right shoulder minus left shoulder) at frame 0 is parallel to +x.

Step 4 rotates about the axis `shoulder x +x`, so it tilts the bone aligned in step 3 unless the
two bones are perpendicular at frame 0 (as in the original). A frame or joint counts as empty when
all its coordinates are zero (the original tests `sum() == 0`; the two differ only on an exact
cancellation).

`data.normalize` (`normalize_dataset`), for data held in memory:
- `none`: the data as given (raw camera coordinates, for instance);
- `center`: step 2 alone: person 0's centre joint subtracted in every frame, from every person
  (what `prepare` does, without rotating), so the body stays at the origin and only its pose moves;
- `center_first`: person 0's centre joint of its first frame in which that joint is present,
  subtracted from every frame (as CTR-GCN's NTU preprocessing translates), so the body's path
  through the room is kept;
- `agcn`: all four steps, exactly `prepare`'s.
The joints come from the data's layout (`SkeletonLayout.center_joint`, `spine`, `shoulders`); an
`.npz` can name them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from halp_bench.config import CHOICES
from halp_bench.datasets.base import SkeletonData
from halp_bench.errors import ConfigError
from halp_bench.skeleton import NTU25, SkeletonLayout

NORMALIZATIONS = CHOICES["data.normalize"]

# The original's tolerances (`rotation.py`): a bone or rotation axis with an L1 norm below this,
# or an angle below it, gives the identity.
_EPS = 1e-6


def pre_normalize(
    data: np.ndarray,
    layout: SkeletonLayout = NTU25,
    *,
    z_bone: tuple[int, int] | None = None,
    x_bone: tuple[int, int] | None = None,
    lengths: np.ndarray | None = None,
    out: np.ndarray | None = None,
    chunk_size: int = 256,
) -> np.ndarray:
    """Normalised float32 copy of `data` (N, C=3, T, V, M); `data` itself is not changed.

    `layout.center_joint` is the joint subtracted in step 2; `z_bone` and `x_bone` (default: the
    layout's `spine` and `shoulders`) are the (from, to) joints of the bones, `x[to] - x[from]`,
    aligned with +z and +x (NTU: hip -> spine and left -> right shoulder; the Kinect v1 layout
    uses the same indices). With `lengths`, frames at or after a sample's length stay zero (the
    container's zero padding) instead of being filled by looping, which the original does up to T.
    `out` (e.g. a writable memmap of the same shape) receives the result, so a dataset never has
    to fit in memory twice.
    """
    z_bone, x_bone = z_bone or layout.spine, x_bone or layout.shoulders
    if layout.center_joint is None or z_bone is None or x_bone is None:
        raise ValueError(f"layout {layout.name} does not name the centre, spine and shoulder joints the pre-normalisation needs")
    if data.ndim != 5 or data.shape[1] != 3:
        raise ValueError(f"pre_normalize expects (N, 3, T, V, M) data, got shape {data.shape}")
    centre = layout.center_joint

    def steps(x: np.ndarray, length: np.ndarray | None) -> np.ndarray:
        x = _fill_null_frames(x, length)
        x = _centre(x, centre)
        x = _align(x, z_bone, np.array([0.0, 0.0, 1.0]))
        return _align(x, x_bone, np.array([1.0, 0.0, 0.0]))

    return _by_chunks(data, layout, steps, lengths, out, chunk_size)


def center_joints(
    data: np.ndarray,
    layout: SkeletonLayout,
    *,
    first_frame: bool = False,
    lengths: np.ndarray | None = None,
    out: np.ndarray | None = None,
    chunk_size: int = 256,
) -> np.ndarray:
    """Float32 copy of `data` (N, C, T, V, M) with person 0's centre joint subtracted from every
    person: per frame (step 2 of the pre-normalisation), or with `first_frame` that joint's
    position in the first frame where it is present. Empty joints, and frames at or after
    `lengths`, stay zero."""
    if layout.center_joint is None:
        raise ValueError(f"layout {layout.name} does not name a centre joint")
    centre = layout.center_joint

    def steps(x: np.ndarray, length: np.ndarray | None) -> np.ndarray:
        if not first_frame:
            return _centre(x, centre)
        joint = x[:, 0, :, centre, :]  # (n, T, C)
        present = (joint != 0).any(-1)
        if length is not None:
            present &= np.arange(x.shape[2]) < length[:, None]
        first = np.argmax(present, axis=1)  # 0 where it is never present: then its zeros are subtracted
        origin = joint[np.arange(len(x)), first]  # (n, C)
        nonzero = (x != 0).any(-1)
        return (x - origin[:, None, None, None, :]) * nonzero[..., None]

    return _by_chunks(data, layout, steps, lengths, out, chunk_size)


def _by_chunks(
    data: np.ndarray,
    layout: SkeletonLayout,
    steps: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    lengths: np.ndarray | None,
    out: np.ndarray | None,
    chunk_size: int,
) -> np.ndarray:
    """`steps(x (n, M, T, V, C), lengths (n,) or None)` over chunks of samples, into `out`."""
    if data.ndim != 5:
        raise ValueError(f"expected (N, C, T, V, M) data, got shape {data.shape}")
    if data.shape[3] != layout.num_joints:
        raise ValueError(f"layout {layout.name} has {layout.num_joints} joints, data has V={data.shape[3]}")
    if lengths is not None and len(lengths) != len(data):
        raise ValueError(f"lengths has {len(lengths)} entries but data has N={len(data)}")
    if out is None:
        out = np.empty(data.shape, dtype=np.float32)
    elif out.shape != data.shape:
        raise ValueError(f"out has shape {out.shape}, expected {data.shape}")
    for start in range(0, len(data), chunk_size):
        stop = min(start + chunk_size, len(data))
        x = np.ascontiguousarray(np.asarray(data[start:stop], dtype=np.float32).transpose(0, 4, 2, 3, 1))
        length = None if lengths is None else np.asarray(lengths[start:stop])
        out[start:stop] = steps(x, length).transpose(0, 4, 2, 3, 1)
    return out


def normalize_dataset(data: SkeletonData, mode: str) -> SkeletonData:
    """`data` normalised as `data.normalize = mode` says (a new container; `data` is not changed).

    Only data held in memory: a prepared dataset is memory-mapped and was normalised (or
    deliberately not) by `prepare`. A layout that lacks a joint the mode needs is a ConfigError
    saying how to name it."""
    if mode not in NORMALIZATIONS:
        raise ConfigError(f"--set data.normalize={mode}: choose one of {', '.join(NORMALIZATIONS)}")
    if mode == "none":
        return data
    if isinstance(data.data, np.memmap):
        raise ConfigError(
            f"data.normalize={mode}: {data.source} is a prepared dataset, normalised by `halp-bench prepare` "
            "(agcn) unless it ran with --no-normalize; data.normalize applies to imported, .npz and synthetic data"
        )
    layout = data.skeleton_layout()
    needed = {"center": ("center_joint",), "center_first": ("center_joint",), "agcn": ("center_joint", "spine", "shoulders")}[mode]
    missing = [name for name in needed if getattr(layout, name) is None]
    if missing:
        raise ConfigError(
            f"data.normalize={mode}: the skeleton layout of {data.source} ({layout.name}) does not name its "
            f"{', '.join(missing)} joint(s); use a layout that does (halp-bench list: ntu25, kinect_v1_20) or, in an .npz, give the "
            "keys layout, or center_joint, spine (hip, spine) and shoulders (left, right)"
        )
    if mode == "agcn" and data.data.shape[1] != 3:
        raise ConfigError(f"data.normalize=agcn: {data.source} has C={data.data.shape[1]} coordinates; the rotations need 3 (x, y, z)")
    if mode == "agcn":
        values = pre_normalize(data.data, layout, lengths=data.lengths)
    else:
        values = center_joints(data.data, layout, first_frame=mode == "center_first", lengths=data.lengths)
    return dataclasses.replace(data, data=values, splits=dict(data.splits), metadata=dict(data.metadata))


def _fill_null_frames(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Step 1 for every person at once, as a gather: frame t takes source frame order[t % K]."""
    n, m, t, _, _ = x.shape
    frames = np.arange(t)
    valid = (x != 0).any(axis=(3, 4))  # (n, M, T)
    if lengths is not None:
        valid &= frames < lengths[:, None, None]
    count = valid.sum(-1)
    # A person whose first frame is empty is compacted (its valid frames, in order, to the front)
    # and loops those; otherwise it loops everything up to its last valid frame, inner gaps included.
    compact = ~valid[..., 0] & (count > 0)
    last = t - np.argmax(valid[..., ::-1], axis=-1)  # one past the last valid frame
    period = np.maximum(np.where(compact, count, last), 1)
    order = np.where(compact[..., None], np.argsort(~valid, axis=-1, kind="stable"), frames)
    source = np.take_along_axis(order, frames % period[..., None], axis=-1)
    filled = x[np.arange(n)[:, None, None], np.arange(m)[None, :, None], source]
    if lengths is not None:
        filled *= (frames < lengths[:, None, None])[..., None, None]
    return filled


def _centre(x: np.ndarray, center_joint: int) -> np.ndarray:
    """Step 2: subtract person 0's centre joint per frame; joints that are empty stay zero."""
    centre = x[:, 0, :, center_joint, :]  # (n, T, C)
    nonzero = (x[..., 0] != 0) | (x[..., 1] != 0) | (x[..., 2] != 0)  # faster than any(-1)
    centred = x - centre[:, None, :, None, :]
    centred *= nonzero[..., None]
    return centred


def _align(x: np.ndarray, bone: tuple[int, int], target: np.ndarray) -> np.ndarray:
    """Steps 3 and 4: rotate each sample so that person 0's bone at frame 0 points along `target`."""
    vector = (x[:, 0, 0, bone[1]] - x[:, 0, 0, bone[0]]).astype(np.float64)  # (n, 3)
    rotation = _rotation_onto(vector, target).astype(np.float32)
    return (x.reshape(len(x), -1, 3) @ rotation.transpose(0, 2, 1)).reshape(x.shape)


def _rotation_onto(vectors: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations about `v x target` by the angle between them (Rodrigues), with the
    original's identity cases: a near-zero bone, axis or angle (so an anti-parallel bone stays)."""
    axis = np.cross(vectors, target)
    norm = np.linalg.norm(vectors, axis=-1)
    cosine = np.clip(vectors @ target / np.where(norm > 0, norm, 1.0), -1.0, 1.0)
    angle = np.where(np.abs(vectors).sum(-1) < _EPS, 0.0, np.arccos(cosine))
    identity = (np.abs(axis).sum(-1) < _EPS) | (np.abs(angle) < _EPS)
    k = axis / np.where(identity, 1.0, np.linalg.norm(axis, axis=-1))[:, None]
    cross = np.zeros((len(k), 3, 3))
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    cross -= cross.transpose(0, 2, 1)
    sin, cos = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    rotation = np.eye(3) + sin * cross + (1 - cos) * cross @ cross
    rotation[identity] = np.eye(3)
    return rotation
