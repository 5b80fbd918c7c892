"""Transfer: an encoder pretrained on a SOURCE dataset is fine-tuned as a whole, with a new
classifier, on a TARGET dataset (paper: NTU-60 / NTU-120 x-sub -> PKU-MMD II x-sub).

The protocol function only fine-tunes (`cfg.transfer`: SGD lr 0.01, momentum 0.9, wd 0, batch 64,
80 epochs, x0.1 at 50 and 70, fc ~ N(0, 0.01) in the paper preset); the runner decides where the
encoder was pretrained:

- `run --dataset pku2 --protocols transfer --transfer-from ntu60[:split]`: the run's dataset is the
  target, the source is pretrained on (or its checkpoint reused: same run directory as
  `run --dataset ntu60`).
- without `--transfer-from`, a dataset listed in `TRANSFER_PAIRS` is a source and its pair the
  target (its default split), so a bare `halp-bench run` pretrains on `synthetic`, evaluates kNN and
  linear there and fine-tunes on `synthetic-target`; for other datasets transfer is skipped with a
  reason.

Either way a transfer row has the target as `dataset`/`split` and `transfer_from = "source/split"`.
"""

from __future__ import annotations

from halp_bench.datasets.base import SkeletonData, SkeletonSubset
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.protocols.base import Metrics, ProtocolContext
from halp_bench.protocols.classifier import train_classifier
from halp_bench.registry import register_protocol

# Default target of a source dataset (the paper transfers NTU-60 and NTU-120 to PKU-MMD II).
TRANSFER_PAIRS: dict[str, str] = {"synthetic": "synthetic-target", "ntu60": "pku2", "ntu120": "pku2"}


def parse_source(text: str) -> tuple[str, str | None]:
    """`NAME` or `NAME:split` -> (name, split or None for the dataset's default split)."""
    name, _, split = text.partition(":")
    if not name.strip():
        raise ConfigError(f"--transfer-from '{text}': expected a dataset name, e.g. ntu60 or ntu60:xsub")
    return name.strip(), split.strip() or None


def check_same_input(source: SkeletonData, target: SkeletonData) -> None:
    """The pretrained encoder reads C*V*M features per frame: source and target must agree."""
    if source.in_channels != target.in_channels:
        _, c, _, v, m = source.shape
        _, tc, _, tv, tm = target.shape
        raise ConfigError(
            f"transfer from '{source.name}' to '{target.name}': the encoder input differs "
            f"(source C*V*M = {c}*{v}*{m} = {source.in_channels}, target {tc}*{tv}*{tm} = {target.in_channels}); "
            "choose datasets with the same joints, channels and bodies"
        )


@register_protocol(
    "transfer",
    "fine-tune the whole encoder pretrained on a source dataset, new head, on the target",
    uses=("transfer", "eval.train_crop_min", "eval.train_crop_max", "eval.train_rotation", "eval.report", "eval.eval_every", "eval.head_std"),
)
def run_transfer(encoder: Encoder, train: SkeletonSubset, test: SkeletonSubset, ctx: ProtocolContext) -> Metrics:
    return train_classifier(encoder, train, test, ctx.cfg.transfer, ctx, finetune=True, label="transfer")
