"""Turning a dataset name from the command line into a `SkeletonData`."""

from __future__ import annotations

from halp_bench.config import DataConfig
from halp_bench.datasets.base import SkeletonData
from halp_bench.registry import DATASETS


def load_dataset(cfg: DataConfig) -> SkeletonData:
    """Look the dataset up by its registered name and load it."""
    return DATASETS.get(cfg.dataset)(cfg)
