"""The field's preprocessed formats, read as they are so that nobody has to prepare again.

* AGCN/CMD layout (2s-AGCN, CMD, HaLP `data_gen/*_gendata.py`): a directory per split with
  `{train,val}_data_joint.npy` (N, 3, 300, 25, 2), `{train,val}_label.pkl` = (names, labels) and
  optionally `{train,val}_num_frame.npy`. The dataset gets one split, named after the directory.
* CTR-GCN layout (`NTU60_CS.npz`, ...): `x_train`/`x_test` (N, T, 150) with each frame ordered
  (M, V, C) = (2, 25, 3), one-hot `y_train`/`y_test`. The split is named from the file name.

Train and test parts are joined into one in-memory array (an `.npz` member cannot be
memory-mapped, and the two AGCN files are separate). Label pickles go through the restricted
unpickler and arrays are read with `allow_pickle=False` (`safe_load`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.formats.safe_load import load_npy, load_plain_pickle
from halp_bench.errors import DataError

AGCN_PARTS = ("train", "val")
AGCN_HINT = "the AGCN/CMD layout: {train,val}_data_joint.npy, {train,val}_label.pkl, optional {train,val}_num_frame.npy"
CTRGCN_KEYS = ("x_train", "y_train", "x_test", "y_test")
CTRGCN_BODIES, CTRGCN_JOINTS, CTRGCN_CHANNELS = 2, 25, 3
# CTR-GCN file suffix -> our split name (NTU60_CS, NTU60_CV, NTU120_CSub, NTU120_CSet)
CTRGCN_SPLITS = {"cs": "xsub", "csub": "xsub", "cv": "xview", "cset": "xset"}
CHUNK = 512  # samples per step when copying or scanning


def is_agcn_dir(path: Path) -> bool:
    return any((path / f"{part}_data_joint.npy").is_file() for part in AGCN_PARTS)


def is_ctrgcn(arrays: dict[str, np.ndarray]) -> bool:
    return all(key in arrays for key in CTRGCN_KEYS)


def valid_lengths(x: np.ndarray) -> np.ndarray:
    """(N,) one past each sample's last frame with a non-zero value (x: (N, C, T, V, M))."""
    lengths = np.zeros(len(x), dtype=np.int64)
    frames = np.arange(1, x.shape[2] + 1)
    for start in range(0, len(x), CHUNK):
        nonzero = np.asarray(x[start : start + CHUNK] != 0).any(axis=(1, 3, 4))  # (n, T)
        lengths[start : start + CHUNK] = (nonzero * frames).max(axis=1)
    return lengths


def read_label_pickle(path: Path, count: int) -> tuple[list[str], np.ndarray]:
    """(names, int64 labels) from an AGCN `*_label.pkl`, checked against the data's N = `count`."""
    value = load_plain_pickle(path)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise DataError(path, f"expected a pickled (sample_names, labels) pair, found {type(value).__name__}")
    names, labels = value
    if not all(isinstance(v, (tuple, list, np.ndarray)) for v in value):
        raise DataError(path, "expected a pickled (sample_names, labels) pair of sequences")
    if len(names) != count or len(labels) != count:
        raise DataError(path, f"expected {count} names and labels (the data's N), found {len(names)} and {len(labels)}")
    if not all(isinstance(name, (str, np.str_)) for name in names):
        raise DataError(path, "expected the sample names to be strings")
    return [str(name) for name in names], integer_labels(path, np.asarray(labels), "labels")


def integer_labels(path: Path, labels: np.ndarray, key: str) -> np.ndarray:
    """0-based int64 labels; integer-valued floats (CMD's PKU pickles hold float64) are accepted."""
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise DataError(path, f"key '{key}': expected integer class labels (N,), found {labels.dtype} {labels.shape}")
    if np.issubdtype(labels.dtype, np.floating) and not np.array_equal(labels, np.round(labels)):
        raise DataError(path, f"key '{key}': expected integer class labels, found fractional values")
    if len(labels) and labels.min() < 0:
        raise DataError(path, f"key '{key}': expected labels in 0..num_classes-1, found {int(labels.min())}")
    return labels.astype(np.int64)


def load_agcn(path: Path) -> SkeletonData:
    """Join the train and val parts of an AGCN/CMD directory; the split is named after it."""
    parts = []
    for part in AGCN_PARTS:
        data_file = path / f"{part}_data_joint.npy"
        if not data_file.is_file():
            raise DataError(data_file, f"file not found; expected {AGCN_HINT}")
        x = load_npy(data_file, mmap_mode="r")
        if x.ndim != 5 or not np.issubdtype(x.dtype, np.floating):
            raise DataError(data_file, f"expected float skeletons (N, C, T, V, M), found {x.dtype} {x.shape}")
        names, labels = read_label_pickle(path / f"{part}_label.pkl", len(x))
        frames_file = path / f"{part}_num_frame.npy"
        if frames_file.is_file():
            frames = load_npy(frames_file)
            if frames.shape != (len(x),) or not np.issubdtype(frames.dtype, np.integer):
                raise DataError(frames_file, f"expected {len(x)} integer frame counts, found {frames.dtype} {frames.shape}")
            lengths = np.minimum(frames, x.shape[2]).astype(np.int64)  # PKU stores untruncated lengths
        else:
            lengths = valid_lengths(x)
        parts.append((data_file, x, names, labels, lengths))
    (train_file, train, *_), (val_file, val, *_) = parts
    if train.shape[1:] != val.shape[1:]:
        raise DataError(val_file, f"expected samples shaped like {train_file.name}'s {train.shape[1:]}, found {val.shape[1:]}")
    data = np.empty((len(train) + len(val), *train.shape[1:]), dtype=np.float32)
    for offset, x in ((0, train), (len(train), val)):
        for start in range(0, len(x), CHUNK):
            chunk = x[start : start + CHUNK]
            data[offset + start : offset + start + len(chunk)] = chunk
    split = path.resolve().name if re.fullmatch(r"[A-Za-z0-9][\w.-]*", path.resolve().name) else "default"
    labels = np.concatenate([parts[0][3], parts[1][3]])
    return SkeletonData(
        name=str(path),
        data=data,
        lengths=np.concatenate([parts[0][4], parts[1][4]]),
        labels=labels,
        num_classes=int(labels.max()) + 1 if len(labels) else 0,
        layout="ntu25" if data.shape[3] == CTRGCN_JOINTS else "",
        splits={split: np.arange(len(data)) < len(train)},
        default_split=split,
        source=str(path),
        names=parts[0][2] + parts[1][2],
        files=(str(train_file), str(val_file)),
        # 2s-AGCN's preprocessing loops each sequence up to T; num_frame gives the true lengths
        zero_padded=not any((path / f"{part}_num_frame.npy").is_file() for part in AGCN_PARTS),
    )


def load_ctrgcn(path: Path, arrays: dict[str, np.ndarray]) -> SkeletonData:
    """Convert CTR-GCN's (N, T, 150) frames as its feeder does: reshape (N, T, M=2, V=25, C=3),
    transpose to (N, C, T, V, M); one-hot labels become class indices."""
    xs, ys = [], []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        per_frame = CTRGCN_BODIES * CTRGCN_JOINTS * CTRGCN_CHANNELS
        if x.ndim != 3 or x.shape[2] != per_frame or not np.issubdtype(x.dtype, np.floating):
            raise DataError(path, f"key 'x_{part}': expected float (N, T, {per_frame}), found {x.dtype} {x.shape}")
        if y.ndim == 2:
            if y.shape[0] != len(x) or not np.isin(y, (0, 1)).all() or not (y.sum(axis=1) == 1).all():
                raise DataError(path, f"key 'y_{part}': expected one-hot rows (N={len(x)}, classes), found {y.dtype} {y.shape}")
            y = y.argmax(axis=1)
        elif len(y) != len(x):
            raise DataError(path, f"key 'y_{part}': expected {len(x)} labels (x_{part}'s N), found {len(y)}")
        xs.append(x)
        ys.append(integer_labels(path, y, f"y_{part}"))
    if xs[0].shape[1] != xs[1].shape[1]:
        raise DataError(path, f"key 'x_test': expected {xs[0].shape[1]} frames like x_train, found {xs[1].shape[1]}")
    frames = xs[0].shape[1]
    n_train, n = len(xs[0]), len(xs[0]) + len(xs[1])
    data = np.empty((n, CTRGCN_CHANNELS, frames, CTRGCN_JOINTS, CTRGCN_BODIES), dtype=np.float32)
    for offset, x in ((0, xs[0]), (n_train, xs[1])):
        for start in range(0, len(x), CHUNK):
            chunk = x[start : start + CHUNK].reshape(-1, frames, CTRGCN_BODIES, CTRGCN_JOINTS, CTRGCN_CHANNELS)
            data[offset + start : offset + start + len(chunk)] = chunk.transpose(0, 4, 1, 3, 2)
    labels = np.concatenate(ys)
    num_classes = arrays["y_train"].shape[1] if arrays["y_train"].ndim == 2 else int(labels.max()) + 1
    split = CTRGCN_SPLITS.get(path.stem.rsplit("_", 1)[-1].lower(), "default")
    return SkeletonData(
        name=str(path),
        data=data,
        lengths=valid_lengths(data),
        labels=labels,
        num_classes=num_classes,
        layout="ntu25",
        splits={split: np.arange(n) < n_train},
        default_split=split,
        source=str(path),
        files=(str(path),),
    )
