"""The data a grid is computed on: a dataset split loaded, checked and fingerprinted (`Stage`), where a
protocol pretrains and evaluates (`Plan`), and the pipeline each method's data goes through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from halp_bench.config import RunConfig
from halp_bench.datasets.base import SkeletonData, SkeletonSubset
from halp_bench.datasets.pipelines import resolve_pipeline
from halp_bench.datasets.quality.checks import check_split
from halp_bench.datasets.quality.fingerprint import DataFingerprint, split_fingerprint
from halp_bench.registry import METHODS


@dataclass
class Stage:
    """One dataset split as the grid uses it: pretraining data, evaluation data or both."""

    dataset: str  # as given (a registered name or a path)
    split: str
    data: SkeletonData
    train: SkeletonSubset
    test: SkeletonSubset
    fingerprint: DataFingerprint
    warnings: list[str] = field(default_factory=list)  # the data check's, "<dataset>/<split>: ..."

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.split}"


@dataclass
class Plan:
    """Where a protocol's encoder is pretrained and where it is evaluated (differ for transfer)."""

    pretrain_on: Stage
    evaluate_on: Stage
    transfer_from: str | None = None

    def data_fingerprint(self) -> dict[str, dict]:
        """What a result row stores of its data (ResultRow.data_fingerprint): the split it was
        evaluated on and, when the encoder was pretrained on another (transfer), that one."""
        stored = {"evaluated_on": self.evaluate_on.fingerprint.to_dict()}
        if self.pretrain_on is not self.evaluate_on:
            stored["pretrained_on"] = self.pretrain_on.fingerprint.to_dict()
        return stored


def method_pipeline(cfg: RunConfig, method_name: str, data: SkeletonData) -> str:
    """The data pipeline of `method_name`'s cells (datasets/pipelines.py), written into `cfg` when one applies."""
    resolved = resolve_pipeline(cfg.data.pipeline, METHODS.get(method_name).data_pipeline, data.stored, cfg.eval.protocol == "common")
    cfg.data.pipeline = resolved
    return resolved


def check_and_fingerprint(data: SkeletonData, dataset: str, split: str, say: Callable[[str], None]) -> tuple[DataFingerprint, list[str]]:
    """The data check of a split a run uses (a DataError refuses data that cannot train; each
    warning is said and returned as "<dataset>/<split>: ...") and the split's fingerprint."""
    warnings = [f"{dataset}/{split}: {finding.line()}" for finding in check_split(data, split)]
    for warning in warnings:
        say(f"data warning: {warning}")
    return split_fingerprint(data, split), warnings
