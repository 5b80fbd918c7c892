"""The one dataset layout every part reads: (N, C, T, V, M) arrays plus labels, lengths and splits.

Loaders (synthetic, NTU, PKU-MMD, generic .npz, ...) produce a `SkeletonData`; protocols and the
engine only ever see `SkeletonSubset`s of it. The big array may be a `np.memmap`: nothing here copies
it, batches are gathered by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from halp_bench.datasets.quality.scan import SampleScan, scan_samples
from halp_bench.errors import ConfigError, DataError
from halp_bench.skeleton import DataSpec, SkeletonLayout, chain_layout, get_layout


@dataclass
class SkeletonData:
    """A whole dataset. `splits[name]` is a bool mask over samples: True = train, False = test."""

    name: str
    data: np.ndarray  # (N, C, T, V, M) float32, zero-padded after each sample's valid length (see `zero_padded`)
    lengths: np.ndarray  # (N,) int, valid frames per sample
    labels: np.ndarray  # (N,) int64, 0-based
    num_classes: int
    layout: str  # registered SkeletonLayout name
    splits: dict[str, np.ndarray]
    default_split: str
    source: str = "<memory>"  # where it came from, for error messages
    names: list[str] | None = None
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # the files `data` was read from: they key its cached scan; () = scanned per load
    zero_padded: bool = True  # False: the source fills the frames after each length (2s-AGCN loops the sequence)
    # what the array holds (datasets/pipelines.py): "given" (as brought), "raw" (camera coordinates,
    # bodies in file order, as `prepare` stores them) or the name of the pipeline already applied
    stored: str = "given"
    scanned: SampleScan | None = field(default=None, repr=False, compare=False)  # see `scan`

    def __post_init__(self) -> None:
        n = len(self.data)
        if self.data.ndim != 5:
            raise DataError(self.source, f"data must be (N, C, T, V, M), got shape {self.data.shape}")
        for key, arr in (("lengths", self.lengths), ("labels", self.labels)):
            if len(arr) != n:
                raise DataError(self.source, f"'{key}' has {len(arr)} entries but data has N={n}")
        for split, mask in self.splits.items():
            if mask.shape != (n,) or mask.dtype != bool:
                raise DataError(self.source, f"split '{split}' must be a bool array of shape ({n},)")
        # what the values hold (finite, labels in range, ...) is checked by datasets/quality/checks.py

    def scan(self, progress: bool = False, refresh: bool = False) -> SampleScan:
        """Per-sample digests and statistics of `data` (datasets/quality/scan.py): one streamed pass,
        made once per container and, for data read from `files`, cached on disk."""
        if self.scanned is None or refresh:
            import torch  # its thread count is this process's share of the cores (common/cpu_share.py)

            self.scanned = scan_samples(self.data, self.files, progress, refresh, workers=torch.get_num_threads(), label=self.name)
        return self.scanned

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def in_channels(self) -> int:
        """Features per frame fed to a sequence encoder: C * V * M."""
        _, c, _, v, m = self.data.shape
        return c * v * m

    def skeleton_layout(self) -> SkeletonLayout:
        """The registered layout this data names, or a chain of its joints when it names none."""
        return get_layout(self.layout) if self.layout else chain_layout(self.data.shape[3])

    def spec(self, frames: int) -> DataSpec:
        """What encoders and methods are built from: this data seen through `frames`-frame views."""
        _, channels, _, joints, persons = self.data.shape
        return DataSpec(channels=channels, frames=frames, joints=joints, persons=persons, layout=self.skeleton_layout())

    def split(self, name: str | None = None) -> tuple[SkeletonSubset, SkeletonSubset]:
        """(train, test) subsets of the named split (the dataset's default when None)."""
        name = name or self.default_split
        if name not in self.splits:
            known = ", ".join(sorted(self.splits))
            raise ConfigError(f"dataset '{self.name}' has no split '{name}'; choose one of: {known}")
        mask = self.splits[name]
        return SkeletonSubset(self, np.flatnonzero(mask)), SkeletonSubset(self, np.flatnonzero(~mask))


@dataclass
class SkeletonSubset:
    """A view of some samples of a `SkeletonData` (no copy of the big array)."""

    source: SkeletonData
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.source.labels[self.indices]

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    def gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x (b,C,T,V,M) float32, lengths (b,), labels (b,)) for positions within this subset.

        Indices are sorted before reading so that a memory-mapped array is read sequentially.
        """
        rows = self.indices[positions]
        order = np.argsort(rows, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        x = np.asarray(self.source.data[rows[order]], dtype=np.float32)[inverse]
        return x, self.source.lengths[rows].astype(np.int64), self.source.labels[rows].astype(np.int64)

    def subset(self, positions: np.ndarray) -> SkeletonSubset:
        return SkeletonSubset(self.source, self.indices[positions])
