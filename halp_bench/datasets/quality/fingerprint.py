"""What data a result was computed on, as a content hash that every result row stores.

A dataset's name and split ("ntu60 xsub") do not say which preparation, annotation file or
download a number came from. The fingerprint of a split hashes every sample's content (the
per-sample digests of the streamed scan, scan.py, so nothing is hashed twice), the valid lengths,
the labels, the number of classes, the layout, the array shape and the split's train/test mask.
Two preparations that differ in one value of one sample get different fingerprints; the same data
at another path, or loaded again, gets the same one. The dataset's name and path are left out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from halp_bench.datasets.base import SkeletonData

FINGERPRINT_VERSION = 1
HASH_CHARS = 16


@dataclass(frozen=True)
class DataFingerprint:
    """One split of one dataset as a cell trains and evaluates on it."""

    hash: str  # HASH_CHARS hex digits over the content and everything below
    samples: int
    train: int
    test: int
    num_classes: int
    layout: str
    shape: tuple[int, ...]  # (C, T, V, M)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}


def content_hash(data: SkeletonData) -> str:
    """The hash of a whole dataset, whatever the split: samples, lengths, labels, classes, layout."""
    header = {"version": FINGERPRINT_VERSION, "shape": list(data.data.shape), "num_classes": int(data.num_classes), "layout": data.layout}
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(data.scan().digests).tobytes())
    digest.update(np.asarray(data.lengths, dtype="<i8").tobytes())
    digest.update(np.asarray(data.labels, dtype="<i8").tobytes())
    return digest.hexdigest()[:HASH_CHARS]


def split_fingerprint(data: SkeletonData, split: str | None = None) -> DataFingerprint:
    """The fingerprint of `split` (the dataset's default when None): its content hash and mask."""
    name = split or data.default_split
    train, _ = data.split(name)  # an unknown split is a ConfigError naming the known ones
    mask = np.asarray(data.splits[name], dtype=bool)
    digest = hashlib.sha256(content_hash(data).encode())
    digest.update(np.packbits(mask).tobytes())
    return DataFingerprint(
        hash=digest.hexdigest()[:HASH_CHARS],
        samples=len(mask),
        train=len(train),
        test=int(len(mask) - len(train)),
        num_classes=int(data.num_classes),
        layout=data.layout,
        shape=tuple(int(s) for s in data.data.shape[1:]),
    )
