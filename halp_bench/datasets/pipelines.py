"""The three data pipelines of the field, applied when a dataset is loaded (`data.pipeline`).

Each family of methods trained on NTU data prepared its own way, and released weights expect it:

- `agcn` (CMD, HaLP, MoCo; 2s-AGCN `data_gen`): the two most active of up to four bodies, empty
  frames filled by looping, person 0's spine-middle joint subtracted per frame, then the whole
  sample turned once (frame 0) so that the spine points along +z and the shoulders along +x
  (`normalize.pre_normalize`). The valid length stays as recorded.
- `stgcn` (SkeletonCLR, CrosSCLR, AimCLR; CrosSCLR `feeder/NTUDatasets.py` with
  `preprocess_ntu.py`): the first two bodies in file order; the valid length is the number of
  frames in which person 0's joint 1 (base of the spine) is non-zero, counted before anything
  else; joint 21 (spine-shoulder) subtracted per frame and per person; the first `length` frames
  resized to 50 by linear interpolation (OpenCV's INTER_LINEAR, half-pixel centres); then each
  person is turned about the camera's y axis, frame by frame, so that its left->right shoulder
  vector without its y part lies along x (the sign of the angle chosen once per person from the
  sum of that vector's z over the frames). The camera's y stays the vertical axis.
- `mamp` (MAMP; CTR-GCN `seq_transformation.py`): one translation: person 0's spine-middle joint
  in the first frame where person 0 is present is subtracted from every joint of every frame;
  frames where a person is absent stay zero; frames where no kept body is present are dropped.
  Bodies: the two most active (CTR-GCN's bodyID tracking and noise filters are not reproduced).
  The crop and the resize to 120 frames belong to MAMP's views, not to the data.

`given` is the data as its loader gives it. `auto` (the default) resolves per method
(`resolve_pipeline`): on data stored raw by `halp-bench prepare` the method family's pipeline
(`Method.data_pipeline`; `agcn` for every method under `eval.protocol=common`), on any other data
the data as given, which keeps the identities and values of everything run before pipelines existed.
A pipeline's output of file-backed data is cached on disk next to the data scans, keyed by the
source files (`scan.cache_key`), so it is computed once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.quality.scan import cache_dir, cache_key
from halp_bench.datasets.raw.normalize import pre_normalize
from halp_bench.errors import ConfigError
from halp_bench.skeleton import SkeletonLayout

PIPELINES = ("auto", "given", "agcn", "stgcn", "mamp")
STGCN_FRAMES = 50  # the ST-GCN family's `max_frame`
CHUNK = 256  # samples per step when a pipeline runs over a (memory-mapped) dataset
PIPELINE_VERSION = 1  # bump when a pipeline's output changes: older caches are then ignored
# What a dataset's array holds (SkeletonData.stored): "given" (as brought), "raw" (camera
# coordinates, bodies in file order: prepare's format 2) or the name of a pipeline already applied.
RAW = "raw"


def body_order(data: SkeletonData) -> np.ndarray:
    """(N, 2) the body slots the `agcn` choice keeps, most active first: recorded by `prepare`
    (over the whole sequence, as the original), else the first two slots."""
    if "agcn_body0" in data.metadata:
        return np.stack([data.metadata["agcn_body0"], data.metadata["agcn_body1"]], axis=1).astype(np.int64)
    return np.tile(np.arange(2), (len(data.data), 1))


def _take_bodies(x: np.ndarray, order: np.ndarray) -> np.ndarray:
    """x (n, C, T, V, M) -> (n, C, T, V, 2): the slots `order` (n, 2) names, in that order."""
    if x.shape[-1] < 2:
        pad = np.zeros((*x.shape[:-1], 2 - x.shape[-1]), dtype=x.dtype)
        x = np.concatenate([x, pad], axis=-1)
    index = np.broadcast_to(order[:, None, None, None, :], (*x.shape[:-1], 2))
    return np.take_along_axis(x, index, axis=-1)


def agcn_chunk(x: np.ndarray, lengths: np.ndarray, order: np.ndarray, layout: SkeletonLayout) -> tuple[np.ndarray, np.ndarray]:
    """The `agcn` pipeline on a chunk: the two most active bodies, then the pre-normalisation."""
    return pre_normalize(_take_bodies(x, order), layout, lengths=lengths), lengths


def stgcn_lengths(x: np.ndarray) -> np.ndarray:
    """The ST-GCN family's valid length: frames where person 0's first joint is non-zero (a count)."""
    return (np.abs(x[:, :, :, 0, 0]).sum(axis=1) != 0).sum(axis=1)


def resize_frames(x: np.ndarray, lengths: np.ndarray, frames: int) -> np.ndarray:
    """x (n, C, T, V, M): the first `lengths[i]` frames of each sample resized to `frames` by
    linear interpolation with half-pixel centres (OpenCV INTER_LINEAR along one axis); a sample
    of length 0 gives zeros."""
    n = len(x)
    src = np.clip((np.arange(frames) + 0.5)[None, :] * lengths[:, None] / frames - 0.5, 0.0, None)  # (n, F)
    low = np.floor(src).astype(np.int64)
    weight = src - low
    last = np.maximum(lengths - 1, 0)[:, None]
    low = np.minimum(low, last)
    high = np.minimum(low + 1, last)
    rows = np.arange(n)[:, None]
    seq = x.transpose(0, 2, 1, 3, 4).astype(np.float64)  # (n, T, C, V, M)
    w = weight[..., None, None, None]
    out = seq[rows, low] * (1 - w) + seq[rows, high] * w
    out[lengths == 0] = 0.0
    return out.transpose(0, 2, 1, 3, 4)


def y_rotate(x: np.ndarray, shoulders: tuple[int, int]) -> np.ndarray:
    """Each person turned about y, frame by frame, so that its shoulder vector (left -> right)
    without its y part lies along +x or -x as the ST-GCN family's `parallel_skeleton` does."""
    left, right = shoulders
    vec = x[:, :, :, right, :] - x[:, :, :, left, :]  # (n, C, T, M)
    vx, vz = vec[:, 0], vec[:, 2]
    norm = np.sqrt(vx**2 + vz**2)
    theta = np.arccos(vx / (norm + 1e-4))
    flip = vz.sum(axis=1, keepdims=True) >= 0  # one sign per person and sample
    theta = np.where(flip, -theta, theta)
    cos, sin = np.cos(theta), np.sin(theta)  # (n, T, M)
    px, py, pz = x[:, 0], x[:, 1], x[:, 2]  # (n, T, V, M)
    c, s = cos[:, :, None, :], sin[:, :, None, :]
    return np.stack([c * px - s * pz, py, s * px + c * pz], axis=1)


def stgcn_chunk(x: np.ndarray, layout: SkeletonLayout, frames: int = STGCN_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """The `stgcn` pipeline on a chunk of raw data with bodies in file order."""
    x = _take_bodies(x, np.tile(np.arange(2), (len(x), 1))).astype(np.float32)
    lengths = stgcn_lengths(x)
    centre = layout.graph_center
    x = x - x[:, :, :, centre : centre + 1, :]
    x = resize_frames(x, lengths, frames).astype(np.float32)
    out = y_rotate(x.astype(np.float64), layout.shoulders).astype(np.float32)
    return out, np.where(lengths > 0, frames, 0)


def mamp_chunk(x: np.ndarray, lengths: np.ndarray, order: np.ndarray, layout: SkeletonLayout) -> tuple[np.ndarray, np.ndarray]:
    """The `mamp` pipeline on a chunk: the two most active bodies, frames without any dropped,
    one translation by person 0's centre joint in its first present frame."""
    x = _take_bodies(x, order).astype(np.float32)
    n, _, t, _, _ = x.shape
    present = (x != 0).any(axis=(1, 3))  # (n, T, M)
    present &= (np.arange(t)[None, :] < lengths[:, None])[..., None]
    kept = present.any(axis=-1)  # (n, T)
    order_t = np.argsort(~kept, axis=1, kind="stable")  # kept frames first, in order
    x = np.take_along_axis(x, order_t[:, None, :, None, None], axis=2)
    present = np.take_along_axis(present, order_t[..., None], axis=1)
    new_lengths = kept.sum(axis=1)
    first = np.argmax(present[:, :, 0], axis=1)
    origin = x[np.arange(n), :, first, layout.center_joint, 0]  # (n, C)
    out = (x - origin[:, :, None, None, None]) * present[:, None, :, None, :]  # dropped frames are absent: zero
    return out.astype(np.float32), new_lengths


def _check_layout(data: SkeletonData, name: str) -> SkeletonLayout:
    layout = data.skeleton_layout()
    needed = {"agcn": ("center_joint", "spine", "shoulders"), "stgcn": ("graph_center", "shoulders"), "mamp": ("center_joint",)}[name]
    missing = [key for key in needed if getattr(layout, key) is None]
    if missing:
        raise ConfigError(
            f"data.pipeline={name}: the skeleton layout of {data.source} ({layout.name}) does not name its "
            f"{', '.join(missing)} joint(s); use a layout that does (halp-bench list)"
        )
    if data.data.shape[1] != 3:
        raise ConfigError(f"data.pipeline={name}: {data.source} has C={data.data.shape[1]} coordinates; the pipelines need 3 (x, y, z)")
    return layout


def _step(data: SkeletonData, name: str, layout: SkeletonLayout) -> Callable[[slice], tuple[np.ndarray, np.ndarray]]:
    order = body_order(data)
    if name == "stgcn":
        return lambda rows: stgcn_chunk(np.asarray(data.data[rows], dtype=np.float32), layout)
    chunk = agcn_chunk if name == "agcn" else mamp_chunk
    return lambda rows: chunk(np.asarray(data.data[rows], dtype=np.float32), data.lengths[rows], order[rows], layout)


def _output_shape(data: SkeletonData, name: str) -> tuple[int, ...]:
    n, c, t, v, _ = data.data.shape
    return (n, c, STGCN_FRAMES if name == "stgcn" else t, v, 2)


def _compute(data: SkeletonData, name: str, out: np.ndarray) -> np.ndarray:
    """Run pipeline `name` over `data` chunk by chunk into `out`; returns the new lengths."""
    step = _step(data, name, _check_layout(data, name))
    lengths = np.zeros(len(data.data), dtype=np.int64)
    for start in range(0, len(data.data), CHUNK):
        rows = slice(start, min(start + CHUNK, len(data.data)))
        out[rows], lengths[rows] = step(rows)
    return lengths


def _cached(data: SkeletonData, name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(values, lengths, files) of pipeline `name` on file-backed data: read from the cache, or
    computed into it (written under a temporary name, then renamed: a killed run leaves no half file)."""
    key = cache_key(data.files, tuple(data.data.shape))
    folder = cache_folder()
    values_path = folder / f"{key}-{name}-v{PIPELINE_VERSION}.npy"
    lengths_path = values_path.with_suffix(".lengths.npy")
    if values_path.exists() and lengths_path.exists():
        return np.load(values_path, mmap_mode="r"), np.load(lengths_path), (str(values_path),)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = values_path.with_suffix(f".partial{os.getpid()}.npy")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=_output_shape(data, name))
    except OSError:  # no writable cache: compute in memory
        out = np.empty(_output_shape(data, name), dtype=np.float32)
        return out, _compute(data, name, out), ()
    lengths = _compute(data, name, out)
    out.flush()
    del out
    np.save(lengths_path, lengths, allow_pickle=False)
    os.replace(partial, values_path)
    return np.load(values_path, mmap_mode="r"), lengths, (str(values_path),)


def apply_pipeline(data: SkeletonData, name: str) -> SkeletonData:
    """`data` as pipeline `name` prepares it (a new container; `data` is not changed). `auto` and
    `given` return it as it is; a pipeline already applied (a prepared directory of format 1)
    returns it too; a pipeline that needs what the stored data lost is a ConfigError."""
    if name not in PIPELINES:
        raise ConfigError(f"--set data.pipeline={name}: choose one of {', '.join(PIPELINES)}")
    if name in ("auto", "given") or data.stored == name:
        return data
    if data.stored not in ("given", RAW):
        raise ConfigError(
            f"data.pipeline={name}: {data.source} holds data already prepared by the {data.stored} pipeline "
            "(a directory of an earlier `halp-bench prepare`); prepare it again to keep raw camera coordinates"
        )
    if data.files:
        values, lengths, files = _cached(data, name)
    else:
        values = np.empty(_output_shape(data, name), dtype=np.float32)
        lengths, files = _compute(data, name, values), ()
    return dataclasses.replace(
        data, data=values, lengths=lengths, splits=dict(data.splits), metadata=dict(data.metadata), files=files, stored=name, scanned=None
    )


def resolve_pipeline(requested: str, family: str, stored: str, common_protocol: bool) -> str:
    """The pipeline a method's cells use: `requested` unless it is `auto`, which on raw prepared
    data is the method family's (`agcn` for all under the common protocol) and otherwise `auto`
    (the data as given)."""
    if requested != "auto":
        return requested
    if stored == RAW:
        return "agcn" if common_protocol else family
    return "auto"


def cache_folder() -> Path:
    """Where pipeline outputs of file-backed data are kept."""
    return cache_dir().parent / "pipelines"
