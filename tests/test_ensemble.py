"""Per-stream pretraining (`method.stream`) and `halp-bench ensemble`: the fused top-1 equals a hand
computation on the stored class scores, with AimCLR's weights and equal ones."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import NTU_SPEC, random_skeletons, tiny_overrides
from halp_bench.config import make_config
from halp_bench.errors import ConfigError
from halp_bench.methods.base import create_method
from halp_bench.orchestration.ensemble import EnsembleSpec, parse_weights, run_ensemble
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import DATASETS
from halp_bench.results.row import read_rows
from halp_bench.results.tables import variant_label

TINY = "tiny-ensemble"


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if TINY not in DATASETS:
        DATASETS.add(TINY, lambda cfg: random_skeletons(n=24, t=12), "test data")


def test_a_single_stream_method_pretrains_the_stream_it_is_given():
    cfg = make_config("cpu", [*tiny_overrides("skeletonclr"), "method.stream=bone"], method="skeletonclr")
    method = create_method("skeletonclr", cfg, NTU_SPEC)
    assert method.streams == ("bone",) and list(method.encoders_q) == ["bone"]
    assert method.encoder_for_eval().encoder.stream == "bone"  # evaluated on the stream it learned (relative, as its views)
    with pytest.raises(ConfigError, match="method.stream is for single-stream methods"):
        create_method("cmd", make_config("cpu", [*tiny_overrides("cmd"), "method.stream=motion"], method="cmd"), NTU_SPEC)
    with pytest.raises(ConfigError, match="choose one of joint, motion, bone"):
        make_config("cpu", ["method.stream=all"], method="moco")


def test_ensemble_fuses_stored_scores_as_a_hand_computation(tmp_path):
    common = tiny_overrides("skeletonclr")
    for stream in ("joint", "motion", "bone"):
        extra = [f"method.stream={stream}"] if stream != "joint" else []
        spec = RunSpec(methods=["skeletonclr"], dataset=TINY, protocols=["knn"], preset="cpu", out=tmp_path, show_progress=False, overrides=[*common, *extra])
        assert [o.status for o in run_grid(spec, say=lambda _: None)] == ["ran"]
    for name, weights in (("aimclr", (0.6, 0.4, 0.6)), ("equal", (1.0, 1.0, 1.0))):
        (cell,) = run_ensemble(
            EnsembleSpec(method="skeletonclr", dataset=TINY, weights=name, out=tmp_path, overrides=common, show_progress=False), say=lambda _: None
        )
        folder = next(p for p in (tmp_path / "ensembles").iterdir() if p.name.endswith(name))
        stored = {s: np.load(folder / f"{s}.npz") for s in ("joint", "motion", "bone")}
        labels = stored["joint"]["labels"]
        by_hand = np.zeros_like(stored["joint"]["scores"])
        for (stream, arrays), weight in zip(stored.items(), weights):
            by_hand += weight * arrays["scores"]
            assert (arrays["labels"] == labels).all()
            assert cell.metrics[f"top1_{stream}"] == pytest.approx(100 * (arrays["scores"].argmax(1) == labels).mean())
        assert cell.metrics["top1"] == pytest.approx(100 * (by_hand.argmax(1) == labels).mean())
    rows = [r for r in read_rows(tmp_path / "results.jsonl") if r.config.get("ensemble")]
    assert [variant_label(r) for r in rows] == ["skeletonclr 3s (aimclr)", "skeletonclr 3s (equal)"]
    assert rows[0].config["ensemble"]["weights"] == {"joint": 0.6, "motion": 0.4, "bone": 0.6}


def test_missing_stream_and_bad_weights_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no stored joint pretraining of skeletonclr .*halp-bench run --methods skeletonclr"):
        run_ensemble(
            EnsembleSpec(method="skeletonclr", dataset=TINY, out=tmp_path, overrides=tiny_overrides("skeletonclr"), show_progress=False), say=lambda _: None
        )
    assert parse_weights("0.5,0.25,0.25") == ("0.5/0.25/0.25", {"joint": 0.5, "motion": 0.25, "bone": 0.25})
    with pytest.raises(ConfigError, match="--weights 0.5,x: expected one of aimclr, equal"):
        parse_weights("0.5,x")
