"""Fine-tuning: the whole encoder (a copy) and a new head trained on the same dataset's training
split, the test split's final-epoch accuracy reported (best marked, as elsewhere). The head is
linear on the pooled feature, or MAMP's MLP on the encoder's tokens (`finetune.head=mamp_mlp`,
protocols/token_head.py).

The recipe is `cfg.finetune`: by default the common one (SGD like `transfer`); a method may bring
its own (`run_defaults`), e.g. MAMP's AdamW with layer-wise lr decay 0.8, lr 3e-4 cosine to 1e-5
after 5 warm-up epochs, 100 epochs, label smoothing 0.1 and drop path 0.3 on the transformer;
`--common-protocol` puts every method on the common recipe. Also `mamp_linear_head`: the
BatchNorm (no affine) + linear head of MAMP's linear probe.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from torch import nn

from halp_bench.config import FinetuneConfig
from halp_bench.datasets.base import SkeletonSubset
from halp_bench.encoders import Encoder
from halp_bench.errors import ConfigError
from halp_bench.protocols.base import Metrics, ProtocolContext
from halp_bench.protocols.classifier import new_head, train_classifier
from halp_bench.protocols.token_head import TokenHeadClassifier
from halp_bench.registry import register_protocol


def layer_decay_groups(opt: FinetuneConfig) -> Callable[[Encoder, nn.Module], list[dict]]:
    """BEiT's layer-wise lr decay as MAMP fine-tunes: a parameter of layer i (0 embeddings, 1..depth
    blocks, depth + 1 final norm and head) gets lr x decay^(depth + 1 - i); weight decay only on
    parameters of two or more dimensions."""

    def groups(encoder: Encoder, head: nn.Module) -> list[dict]:
        layer_id = getattr(encoder, "layer_id", None)
        if layer_id is None:
            raise ConfigError(
                f"finetune.layer_decay={opt.layer_decay} needs an encoder with layers (layer_id), "
                f"which {type(encoder).__name__} has not; --set finetune.layer_decay=1"
            )
        named = [(name, p, layer_id(name)) for name, p in encoder.named_parameters()]
        top = max(layer for _, _, layer in named)
        named += [(f"head.{name}", p, top) for name, p in head.named_parameters()]
        buckets: dict[tuple[int, bool], list[nn.Parameter]] = {}
        for _, p, layer in named:
            buckets.setdefault((layer, p.ndim > 1), []).append(p)
        return [
            {"params": params, "lr": opt.lr * opt.layer_decay ** (top - layer), "weight_decay": opt.weight_decay if decayed else 0.0}
            for (layer, decayed), params in sorted(buckets.items())
        ]

    return groups


def mamp_linear_head(feature_dim: int, num_classes: int) -> nn.Sequential:
    """MAMP's linear-probe head: BatchNorm1d without affine (eps 1e-6), then a linear layer."""
    return nn.Sequential(nn.BatchNorm1d(feature_dim, affine=False, eps=1e-6), new_head(feature_dim, num_classes))


def with_drop_path(encoder: Encoder, rate: float) -> Encoder:
    """A copy of `encoder` with stochastic depth `rate` (encoders with `set_drop_path`)."""
    if rate == 0:
        return encoder
    if not hasattr(encoder, "set_drop_path"):
        raise ConfigError(
            f"finetune.drop_path={rate} needs an encoder with stochastic depth (set_drop_path), "
            f"which {type(encoder).__name__} has not; --set finetune.drop_path=0"
        )
    copied = copy.deepcopy(encoder)
    copied.set_drop_path(rate)
    return copied


@register_protocol(
    "finetune",
    "fine-tune the whole encoder and a new head on the same dataset (final-epoch top-1/top-5)",
    uses=("finetune", "eval.train_crop_min", "eval.train_crop_max", "eval.train_rotation", "eval.report", "eval.eval_every"),
)
def run_finetune(encoder: Encoder, train: SkeletonSubset, test: SkeletonSubset, ctx: ProtocolContext) -> Metrics:
    opt = ctx.cfg.finetune
    groups = layer_decay_groups(opt) if opt.layer_decay != 1.0 else None
    model, head = with_drop_path(encoder, opt.drop_path), None
    if opt.head == "mamp_mlp":  # encoder and MAMP's head as one model giving the logits, behind an identity head
        model, head = TokenHeadClassifier(model, train.num_classes, opt.head_hidden, opt.head_dropout), nn.Identity()
    return train_classifier(model, train, test, opt, ctx, finetune=True, label="finetune", head=head, param_groups=groups, label_smoothing=opt.label_smoothing)
