"""Semi-supervised evaluation (the paper's supplementary): fine-tune the whole encoder with a new
head on 1 % / 5 % / 10 % / 20 % of the training labels (`eval.semi_fractions`), test on the full test
set. The recipe is the transfer one (`cfg.transfer`), as in the official scripts.

One result row holds every fraction: metrics `top1@1%`, `top5@1%`, `final_top1@1%`, `labelled@1%`
(number of labelled samples), ... so the semi-supervised table reads one row per method.

Difference from the official code (`feeder_downstream_semi_supervised.py`), which drew each subset
with `np.random.shuffle` over all samples, without a seed and without class balancing: here the
subsets are class-stratified (each class keeps `round(fraction * n_class)` samples, at least one)
and drawn from the run's seed, so they are reproducible and `--seeds 0,1,2` gives three different
draws; the subsets of one seed are nested (the 1 % subset lies inside the 5 % one, ...), so the
fractions differ only in how many labels they add.
"""

from __future__ import annotations

import numpy as np

from halp_bench.datasets.base import SkeletonSubset
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.protocols.base import Metrics, ProtocolContext
from halp_bench.protocols.classifier import train_classifier
from halp_bench.registry import register_protocol

KEPT_METRICS = ("top1", "top5", "final_top1")


def fraction_label(fraction: float) -> str:
    """0.01 -> '1%' (the suffix of the metric names and the table's column labels)."""
    return f"{fraction * 100:g}%"


def stratified_subsets(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> dict[float, np.ndarray]:
    """Positions (sorted) of a class-stratified subset per fraction; nested across fractions.

    Each class's positions are permuted once by a generator seeded with `seed`; a fraction keeps the
    first max(1, round(fraction * n_class)) of them.
    """
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ConfigError(f"eval.semi_fractions: {fraction} is not in (0, 1]")
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    return {fraction: np.sort(np.concatenate([order[: max(1, round(fraction * len(order)))] for order in orders])) for fraction in fractions}


@register_protocol(
    "semi",
    "semi-supervised fine-tuning on 1/5/10/20 % of the labels (class-stratified, seeded)",
    uses=(
        "transfer",
        "eval.semi_fractions",
        "eval.train_crop_min",
        "eval.train_crop_max",
        "eval.train_rotation",
        "eval.report",
        "eval.eval_every",
        "eval.head_std",
    ),
)
def run_semi(encoder: Encoder, train: SkeletonSubset, test: SkeletonSubset, ctx: ProtocolContext) -> Metrics:
    metrics: Metrics = {}
    subsets = stratified_subsets(train.labels, ctx.cfg.eval.semi_fractions, ctx.cfg.seed)
    for fraction, positions in subsets.items():
        pct = fraction_label(fraction)
        result = train_classifier(encoder, train.subset(positions), test, ctx.cfg.transfer, ctx, finetune=True, label=f"semi {pct}")
        metrics.update({f"{key}@{pct}": result[key] for key in KEPT_METRICS})
        metrics[f"labelled@{pct}"] = float(len(positions))
    return metrics
