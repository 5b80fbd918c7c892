"""Released ST-GCN files are evaluated on their own axes: a torchlight-layout file built here,
whose `data_bn` statistics are those of the ST-GCN family's data (y up, the camera's vertical),
reproduces its features through `eval`'s data path, and the AGCN axes (z up) change them."""

from __future__ import annotations

import numpy as np
import torch

from conftest import NTU_SPEC
from halp_bench.config import DataConfig, make_config
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.pipelines import apply_pipeline
from halp_bench.encoders import STGCNSettings, build_encoder
from halp_bench.orchestration.evaluate import EvalSpec, eval_pipeline, run_eval
from halp_bench.results.row import read_rows
from halp_bench.weights import eval_encoder_from_authors, read_weights

SMALL = STGCNSettings(hidden_channels=4, hidden_dim=8)


def channel_statistics(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of `data_bn`'s V-major channels (v*C + c), persons pooled, as training leaves them."""
    n, c, t, v, m = x.shape
    flat = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
    return flat.mean(dim=(0, 2)), flat.var(dim=(0, 2))


def torchlight_file(path, family_data: np.ndarray) -> torch.nn.Module:
    """A SkeletonCLR/AimCLR-style flat state dict whose data_bn encodes `family_data`'s statistics."""
    torch.manual_seed(0)
    encoder = build_encoder(NTU_SPEC, SMALL).eval()
    mean, var = channel_statistics(family_data)
    with torch.no_grad():
        encoder.data_bn.running_mean.copy_(mean)
        encoder.data_bn.running_var.copy_(var)
    state = {f"encoder_q.{key}": value for key, value in encoder.state_dict().items()}
    state.update({f"encoder_k.{key}": value.clone() for key, value in encoder.state_dict().items()})
    state.update(queue=torch.randn(8, 32), queue_ptr=torch.zeros(1, dtype=torch.long))
    torch.save(state, path)
    return encoder


def test_released_stgcn_file_sees_y_up_data_and_the_agcn_axes_change_its_features(tmp_path):
    synthetic = load_dataset(DataConfig(dataset="synthetic", synthetic_samples=60), check=False)
    family, agcn = apply_pipeline(synthetic, "stgcn"), apply_pipeline(synthetic, "agcn")
    mean, _ = channel_statistics(family.data)
    spine = mean.reshape(25, 3)[0]  # joint 1 (spine base) relative to joint 21: below it, along -y
    assert spine[1] < -0.2 and abs(spine[2]) < 0.5 * abs(spine[1])
    path = tmp_path / "ntu60_xsub_joint.pt"
    original = torchlight_file(path, family.data)
    weights = read_weights(path)
    cfg = make_config("cpu", [], method="skeletonclr")
    assert eval_pipeline(weights, cfg, "skeletonclr", synthetic.stored) == "stgcn"
    encoder, _ = eval_encoder_from_authors(weights, None, "joint", NTU_SPEC)
    right = torch.from_numpy(np.ascontiguousarray(family.data[:16]))
    wrong = torch.from_numpy(np.ascontiguousarray(agcn.data[:16, :, :50]))
    with torch.no_grad():
        expected = original(right)
        torch.testing.assert_close(encoder.eval()(right), expected, atol=1e-6, rtol=0)
        changed = encoder(wrong)
        normalised = original.data_bn(wrong.permute(0, 4, 3, 1, 2).reshape(-1, 75, 50)).mean(dim=(0, 2)).reshape(25, 3)
    assert ((changed - expected).norm(dim=1) / expected.norm(dim=1)).mean() > 0.2
    assert normalised[0, 1].abs() > 1.0  # height where the file's statistics expect depth: far off its standardised range


def test_eval_of_a_released_stgcn_file_records_its_pipeline(tmp_path):
    synthetic = load_dataset(DataConfig(dataset="synthetic", synthetic_samples=60), check=False)
    path = tmp_path / "ntu60_xsub_joint.pt"
    torchlight_file(path, apply_pipeline(synthetic, "stgcn").data)
    spec = EvalSpec(
        checkpoint=path,
        dataset="synthetic",
        method="skeletonclr",
        protocols=["knn"],
        out=tmp_path / "out",
        show_progress=False,
        overrides=["data.synthetic_samples=60", "eval.batch_size=32"],
    )
    assert [o.status for o in run_eval(spec, say=lambda _: None)] == ["ran"]
    (row,) = read_rows(tmp_path / "out" / "results.jsonl")
    assert row.config["data"]["pipeline"] == "stgcn" and row.settings["pipeline"] == "stgcn"
