"""Skeleton datasets: one in-memory (or memory-mapped) container and loaders registered by name."""

from halp_bench.datasets.base import SkeletonData, SkeletonSubset

__all__ = ["SkeletonData", "SkeletonSubset"]
