"""k-nearest-neighbour evaluation: no training, cosine similarity of frozen features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from halp_bench.datasets.base import SkeletonSubset
from halp_bench.encoders import Encoder
from halp_bench.protocols.base import Metrics, ProtocolContext, extract_features
from halp_bench.registry import register_protocol


def knn_predict(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor, k: int, num_classes: int, chunk: int = 4096) -> Tensor:
    """Majority vote of the k most cosine-similar training samples (ties -> smallest class id,
    like scikit-learn's uniform-weight KNeighborsClassifier). Features must be L2-normalised."""
    preds = []
    for start in range(0, len(test_feats), chunk):
        sims = test_feats[start : start + chunk] @ train_feats.t()
        idx = sims.topk(min(k, len(train_feats)), dim=1).indices
        votes = F.one_hot(train_labels[idx], num_classes).sum(dim=1)
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds)


@register_protocol("knn", "k-NN (cosine, k=1 by default) on frozen pre-projection features", uses=("eval.knn_k",))
def run_knn(encoder: Encoder, train: SkeletonSubset, test: SkeletonSubset, ctx: ProtocolContext) -> Metrics:
    train_feats, train_labels = extract_features(encoder, train, ctx)
    test_feats, test_labels = extract_features(encoder, test, ctx)
    pred = knn_predict(train_feats, train_labels, test_feats, ctx.cfg.eval.knn_k, train.num_classes)
    top1 = 100.0 * (pred == test_labels).float().mean().item()
    ctx.logger.log({"knn/top1": top1}, 0)
    return {"top1": top1, "k": float(ctx.cfg.eval.knn_k)}
