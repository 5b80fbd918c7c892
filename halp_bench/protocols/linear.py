"""Linear evaluation: a new linear classifier on the frozen encoder (eval mode, proven unchanged)."""

from __future__ import annotations

from halp_bench.datasets.base import SkeletonSubset
from halp_bench.encoders import Encoder
from halp_bench.protocols.base import Metrics, ProtocolContext
from halp_bench.protocols.classifier import train_classifier
from halp_bench.protocols.finetune import mamp_linear_head
from halp_bench.protocols.stream_heads import PER_STREAM_MEAN, per_stream_head
from halp_bench.registry import register_protocol


@register_protocol(
    "linear",
    "linear probe on the frozen encoder (final-epoch top-1/top-5)",
    uses=("linear", "eval.train_crop_min", "eval.train_crop_max", "eval.train_rotation", "eval.report", "eval.eval_every", "eval.head_std", "eval.linear_head"),
)
def run_linear(encoder: Encoder, train: SkeletonSubset, test: SkeletonSubset, ctx: ProtocolContext) -> Metrics:
    kind, head = ctx.cfg.eval.linear_head, None
    if kind == "batchnorm_linear":
        head = mamp_linear_head(encoder.feature_dim, train.num_classes)
    elif kind == PER_STREAM_MEAN:
        head = per_stream_head(encoder, train.num_classes, ctx.cfg.eval.head_std)
    return train_classifier(encoder, train, test, ctx.cfg.linear, ctx, finetune=False, label="linear", head=head)
