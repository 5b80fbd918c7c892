"""A tiny end-to-end `run` through the library API: rows written, cells skipped, checkpoints reused."""

from __future__ import annotations

import json

import pytest

from conftest import random_skeletons, tiny_overrides
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import DATASETS
from halp_bench.results.store import load_results


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if "tiny-random" not in DATASETS:
        DATASETS.add("tiny-random", lambda cfg: random_skeletons(n=24, t=12), "test data")


def _spec(tmp_path, extra: tuple[str, ...] = (), **kw) -> RunSpec:
    """A tiny run of `methods` (default moco, random) with the tiny settings they have, then `extra`."""
    base = dict(methods=["moco", "random"], dataset="tiny-random", protocols=["knn", "linear"], preset="cpu", out=tmp_path, show_progress=False)
    base.update(kw)
    return RunSpec(overrides=[*tiny_overrides(*base["methods"]), *extra], **base)


def test_run_writes_one_row_per_cell_and_skips_finished_cells(tmp_path):
    outcomes = run_grid(_spec(tmp_path), say=lambda _: None)
    assert [o.status for o in outcomes] == ["ran"] * 4
    rows = load_results(tmp_path / "results.jsonl")
    assert {(r["method"], r["protocol"]) for r in rows} == {("moco", "knn"), ("moco", "linear"), ("random", "knn"), ("random", "linear")}
    moco_linear = next(r for r in rows if r["method"] == "moco" and r["protocol"] == "linear")
    assert moco_linear["metrics"]["encoder_frozen_verified"] == 1.0
    assert moco_linear["pretrain"]["epochs"] == 2 and moco_linear["pretrain"]["time_per_epoch_s"] > 0
    assert moco_linear["config"]["encoder"]["hidden_size"] == 16 and moco_linear["report"] == "final"
    json.dumps(rows)  # every row is plain JSON
    again = run_grid(_spec(tmp_path), say=lambda _: None)
    assert [o.status for o in again] == ["skipped"] * 4
    assert len(load_results(tmp_path / "results.jsonl")) == 4


def test_a_changed_setting_is_a_new_cell(tmp_path):
    run_grid(_spec(tmp_path, methods=["random"], protocols=["knn"]), say=lambda _: None)
    outcomes = run_grid(_spec(tmp_path, methods=["random"], protocols=["knn"], extra=("eval.knn_k=3",)), say=lambda _: None)
    assert [o.status for o in outcomes] == ["ran"]


def test_finished_pretraining_is_reused_by_a_later_protocol(tmp_path, monkeypatch):
    run_grid(_spec(tmp_path, methods=["moco"], protocols=["knn"]), say=lambda _: None)
    import halp_bench.methods.moco as moco_module

    calls = []
    original = moco_module.MoCo.training_step
    monkeypatch.setattr(moco_module.MoCo, "training_step", lambda self, b: calls.append(1) or original(self, b))
    outcomes = run_grid(_spec(tmp_path, methods=["moco"], protocols=["knn", "linear"]), say=lambda _: None)
    assert [o.status for o in outcomes] == ["skipped", "ran"]
    assert calls == []  # the complete checkpoint was loaded, no training step ran


def test_the_cost_of_a_pretraining_is_said_after_its_first_epoch(tmp_path):
    said: list[str] = []
    run_grid(_spec(tmp_path, methods=["moco"], protocols=["knn"], extra=("pretrain.epochs=3",)), say=said.append)
    estimates = [line for line in said if "first epoch" in line]
    assert len(estimates) == 1 and "for the 2 epochs left" in estimates[0] and "peak memory" in estimates[0]


def test_long_epochs_get_their_cost_said_after_a_few_steps(tmp_path, monkeypatch):
    import halp_bench.engine.estimate as pretrain_module

    monkeypatch.setattr(pretrain_module, "ESTIMATE_AFTER_STEPS", 3)
    said: list[str] = []
    extra = ("pretrain.epochs=3", "pretrain.batch_size=2")  # 16 training samples: 8 steps an epoch
    run_grid(_spec(tmp_path, methods=["moco"], protocols=["knn"], extra=extra), say=said.append)
    estimates = [line for line in said if "peak memory" in line]
    # the first step is not timed; after 3 more, 24 - 4 = 20 steps are left
    assert len(estimates) == 1 and "s per step over 3 steps" in estimates[0] and "for the 20 steps left" in estimates[0], said


def test_a_method_setting_retrains_only_its_method_and_an_encoder_setting_retrains_both(tmp_path, monkeypatch):
    """`--set method.lam=0.6 --methods moco,halp`: MoCo's stored cell is kept and its checkpoint
    reused (no MoCo step), only HaLP trains again; an encoder setting belongs to both."""
    import halp_bench.methods.moco as moco_module

    steps: list[str] = []
    original = moco_module.MoCo.training_step
    monkeypatch.setattr(moco_module.MoCo, "training_step", lambda self, b: steps.append(type(self).__name__) or original(self, b))
    both = dict(methods=["moco", "halp"])
    assert [o.status for o in run_grid(_spec(tmp_path, protocols=["knn"], **both), say=lambda _: None)] == ["ran"] * 2
    assert set(steps) == {"MoCo", "HaLP"}
    runs_before = {p.name for p in (tmp_path / "runs").iterdir()}

    steps.clear()
    outcomes = run_grid(_spec(tmp_path, protocols=["knn", "linear"], extra=("method.lam=0.6",), **both), say=lambda _: None)
    assert [(o.method, o.protocol, o.status) for o in outcomes] == [
        ("moco", "knn", "skipped"),
        ("moco", "linear", "ran"),
        ("halp", "knn", "ran"),
        ("halp", "linear", "ran"),
    ]
    assert set(steps) == {"HaLP"}  # MoCo's linear cell ran on its stored checkpoint
    new_runs = {p.name for p in (tmp_path / "runs").iterdir()} - runs_before
    assert len(new_runs) == 1 and next(iter(new_runs)).startswith("halp_")
    rows = load_results(tmp_path / "results.jsonl")
    moco_ids = {r["config_id"] for r in rows if r["method"] == "moco" and r["protocol"] == "knn"}
    assert len(moco_ids) == 1  # one MoCo kNN cell, not a new group for HaLP's setting

    steps.clear()
    outcomes = run_grid(_spec(tmp_path, protocols=["knn"], extra=("method.lam=0.6", "encoder.hidden_size=8"), **both), say=lambda _: None)
    assert [o.status for o in outcomes] == ["ran", "ran"] and set(steps) == {"MoCo", "HaLP"}
