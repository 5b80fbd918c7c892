"""kNN prediction against scikit-learn's KNeighborsClassifier (cosine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.neighbors import KNeighborsClassifier

from halp_bench.protocols.knn import knn_predict


@pytest.mark.parametrize("k", [1, 5])
def test_knn_matches_sklearn(k):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 16)).astype(np.float32)
    test = rng.normal(size=(120, 16)).astype(np.float32)
    labels = rng.integers(0, 7, size=300)
    ref = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(train, labels).predict(test)
    ours = knn_predict(F.normalize(torch.from_numpy(train), dim=1), torch.from_numpy(labels), F.normalize(torch.from_numpy(test), dim=1), k, 7, chunk=50)
    assert (ours.numpy() == ref).mean() >= 0.99  # exact up to ties of equal similarity
