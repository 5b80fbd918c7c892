"""Bring your own data: one `.npz` file with any number of joints and bodies.

Keys (`np.savez`; read with `allow_pickle=False`):

    x               float (N, C, T, V, M) skeletons, zero after each sample's valid frames
    y               int (N,) class labels, 0-based
    split_<name>    bool (N,) one per named split: True = train, False = test (at least one)
    length          optional int (N,) valid frames (default: up to the last non-zero frame)
    num_classes     optional int scalar (default: max(y) + 1)
    layout          optional str scalar: a registered layout name (`halp-bench list`), or
    bones           optional int (B, 2) 0-based (joint, partner) pairs: bone[joint] = x[joint] - x[partner]
    center_joint    optional int scalar: the joint `data.normalize` centres on
    spine           optional int (2,): (hip, spine) joints, the bone `data.normalize=agcn` turns to +z
    shoulders       optional int (2,): (left, right) shoulder joints, the bone it turns to +x
    anything else   metadata arrays of length N (e.g. subject, view)

Without `layout` or `bones` the bone stream chains each joint to the previous one. The three joint
keys override those of `layout` (or complete `bones` or the chain). Every method works with any V
and M: encoders are built for C * V * M inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.formats.imported import integer_labels, valid_lengths
from halp_bench.errors import DataError
from halp_bench.registry import LAYOUTS
from halp_bench.skeleton import SkeletonLayout, chain_bones

SPLIT_PREFIX = "split_"
JOINT_KEYS = ("center_joint", "spine", "shoulders")  # the joints normalisation needs (SkeletonLayout)
RESERVED = ("x", "y", "length", "num_classes", "layout", "bones", *JOINT_KEYS)


def _num_classes(path: Path, arrays: dict[str, np.ndarray], labels: np.ndarray) -> int:
    """The declared `num_classes` (checked against the labels), else the largest label + 1."""
    num_classes = int(labels.max()) + 1
    if "num_classes" not in arrays:
        return num_classes
    declared = arrays["num_classes"]
    if declared.shape != () or not np.issubdtype(declared.dtype, np.integer):
        raise DataError(path, f"key 'num_classes': expected an int scalar, found {declared.dtype} {declared.shape}")
    if int(declared) < num_classes:
        raise DataError(path, f"key 'y': expected labels in 0..{int(declared) - 1} (num_classes), found {num_classes - 1}")
    return int(declared)


def load_npz_dataset(path: Path, arrays: dict[str, np.ndarray]) -> SkeletonData:
    """Check every key of a generic `.npz` (each problem is a DataError naming the key) and wrap it."""
    for key, what in (("x", "float skeletons (N, C, T, V, M)"), ("y", "int class labels (N,)")):
        if key not in arrays:
            raise DataError(path, f"missing key '{key}': expected {what} (found keys: {', '.join(sorted(arrays)) or 'none'})")
    x = arrays["x"]
    if x.ndim != 5 or not np.issubdtype(x.dtype, np.floating) or len(x) == 0:
        raise DataError(path, f"key 'x': expected float (N, C, T, V, M) with N >= 1, found {x.dtype} {x.shape}")
    n, _, frames, joints, _ = x.shape

    def per_sample(key: str) -> np.ndarray:
        value = arrays[key]
        if value.ndim < 1 or len(value) != n:
            raise DataError(path, f"key '{key}': expected {n} entries (x has N={n}), found shape {value.shape}")
        return value

    y = per_sample("y")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(path, f"key 'y': expected int class labels, found {y.dtype}")
    labels = integer_labels(path, y, "y")
    num_classes = _num_classes(path, arrays, labels)
    if "length" in arrays:
        lengths = per_sample("length")
        if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or lengths.min() < 1 or lengths.max() > frames:
            raise DataError(path, f"key 'length': expected int frame counts in 1..{frames} (T), found {lengths.dtype} {lengths.min()}..{lengths.max()}")
        lengths = lengths.astype(np.int64)
    else:
        lengths = valid_lengths(x)
    splits = {}
    for key in arrays:
        if key.startswith(SPLIT_PREFIX):
            mask = per_sample(key)
            if mask.dtype != bool or mask.ndim != 1:
                raise DataError(path, f"key '{key}': expected a bool mask (N,) (True = train), found {mask.dtype} {mask.shape}")
            if mask.all() or not mask.any():
                side = "test" if mask.all() else "train"
                raise DataError(path, f"key '{key}': expected both train and test samples, found no {side} sample")
            splits[key[len(SPLIT_PREFIX) :]] = mask
    if not splits or "" in splits:
        raise DataError(path, f"expected at least one bool key '{SPLIT_PREFIX}<name>' (N,) marking train samples, found none")
    metadata = {key: per_sample(key) for key in arrays if key not in RESERVED and not key.startswith(SPLIT_PREFIX)}
    return SkeletonData(
        name=str(path),
        data=x.astype(np.float32, copy=False),
        lengths=lengths,
        labels=labels,
        num_classes=num_classes,
        layout=_layout(path, arrays, joints),
        splits=splits,
        default_split=next(iter(splits)),
        source=str(path),
        metadata=metadata,
        files=(str(path),),
    )


def _layout(path: Path, arrays: dict[str, np.ndarray], joints: int) -> str:
    """The layout name: the given one, one registered on the fly for `bones` or for the joint keys,
    or "" (a chain, no joint known to normalisation)."""
    if "layout" in arrays and "bones" in arrays:
        raise DataError(path, "keys 'layout' and 'bones': expected one of them, found both")
    named = _named_joints(path, arrays, joints)
    if "layout" in arrays:
        name = str(arrays["layout"])
        if arrays["layout"].shape != () or name not in LAYOUTS:
            raise DataError(path, f"key 'layout': expected a registered layout name ({', '.join(LAYOUTS.names())}), found '{name[:60]}'")
        if LAYOUTS.get(name).num_joints != joints:
            raise DataError(path, f"key 'layout': {name} has {LAYOUTS.get(name).num_joints} joints but x has V={joints}")
        if not named:
            return name
        base = LAYOUTS.get(name)
    elif "bones" in arrays:
        base = SkeletonLayout("", joints, _bones(path, arrays["bones"], joints), None)
    elif named:
        base = SkeletonLayout("", joints, chain_bones(joints), None)
    else:
        return ""
    layout = dataclasses.replace(base, **named)
    digest = hashlib.sha256(repr((joints, layout.bones, sorted(named.items()))).encode()).hexdigest()[:8]
    name = f"npz:{path.stem}:{digest}"
    if name not in LAYOUTS:  # the same file loaded twice in one process registers once
        LAYOUTS.add(name, dataclasses.replace(layout, name=name), f"{layout.describe()}, from {path.name}")
    return name


def _bones(path: Path, bones: np.ndarray, joints: int) -> tuple[tuple[int, int], ...]:
    if bones.ndim != 2 or bones.shape[1] != 2 or not np.issubdtype(bones.dtype, np.integer):
        raise DataError(path, f"key 'bones': expected int (B, 2) joint pairs, found {bones.dtype} {bones.shape}")
    if len(bones) and (bones.min() < 0 or bones.max() >= joints):
        raise DataError(path, f"key 'bones': expected 0-based joints in 0..{joints - 1}, found {bones.min()}..{bones.max()}")
    if len(np.unique(bones[:, 0])) != len(bones):
        raise DataError(path, "key 'bones': expected each joint at most once as the first of a pair (one bone per joint)")
    return tuple((int(a), int(b)) for a, b in bones)


def _named_joints(path: Path, arrays: dict[str, np.ndarray], joints: int) -> dict[str, int | tuple[int, int]]:
    """The joint keys the file gives, checked (SkeletonLayout field -> value)."""
    named: dict[str, int | tuple[int, int]] = {}
    for key in JOINT_KEYS:
        if key not in arrays:
            continue
        value, shape = arrays[key], (() if key == "center_joint" else (2,))
        what = "an int scalar" if key == "center_joint" else "two ints (from, to)"
        if value.shape != shape or not np.issubdtype(value.dtype, np.integer) or value.min() < 0 or value.max() >= joints:
            raise DataError(path, f"key '{key}': expected {what}, 0-based joints in 0..{joints - 1}, found {value.dtype} {value.tolist()}")
        named[key] = int(value) if key == "center_joint" else (int(value[0]), int(value[1]))
    return named
