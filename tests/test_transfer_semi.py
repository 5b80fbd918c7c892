"""Transfer and semi-supervised protocols on tiny data, and the grid around them: one pretraining
per (method, dataset) shared by kNN, linear and transfer, transfer sources and targets, suites."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import random_skeletons, tiny_config, tiny_overrides
from halp_bench.config import make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.errors import ConfigError, UnknownNameError
from halp_bench.methods.base import create_method
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.protocols import classifier
from halp_bench.protocols.base import ProtocolContext
from halp_bench.protocols.classifier import state_fingerprint
from halp_bench.protocols.semi import stratified_subsets
from halp_bench.protocols.transfer import TRANSFER_PAIRS
from halp_bench.registry import DATASETS, METHODS, PROTOCOLS
from halp_bench.results.store import load_results
from halp_bench.skeleton import DataSpec, get_layout
from halp_bench.suites import suite_names, suite_specs


@pytest.fixture(scope="module", autouse=True)
def _tiny_datasets():
    for name, make in {
        "tiny-src": lambda cfg: random_skeletons(n=24, t=12, classes=3, seed=0),
        "tiny-tgt": lambda cfg: random_skeletons(n=24, t=12, classes=4, seed=1),
        "tiny-20-joints": lambda cfg: random_skeletons(n=24, t=12, v=20, classes=3, seed=2),
    }.items():
        if name not in DATASETS:
            DATASETS.add(name, make, "test data")


@pytest.fixture
def synthetic_target():
    """(config of a method, the data's description, train, test) of a small synthetic-target."""

    def load(method: str):
        cfg = tiny_config(method, "data.synthetic_samples=60", "data.dataset=synthetic-target")
        data = load_dataset(cfg.data)
        _, c, _, v, m = data.shape
        spec = DataSpec(channels=c, frames=cfg.data.frames, joints=v, persons=m, layout=get_layout(data.layout))
        train, test = data.split()
        return cfg, spec, train, test

    return load


def test_transfer_finetunes_a_copy_of_the_encoder_and_linear_changes_nothing(synthetic_target, monkeypatch):
    cfg, spec, train, test = synthetic_target("moco")
    torch.manual_seed(0)
    encoder = create_method("moco", cfg, spec).encoder_for_eval()
    ctx = ProtocolContext(cfg=cfg, device=torch.device("cpu"), show_progress=False)
    original = state_fingerprint(encoder)

    metrics = PROTOCOLS.get("linear")(encoder, train, test, ctx)
    assert metrics["encoder_frozen_verified"] == 1.0 and state_fingerprint(encoder) == original

    copies = []  # every deep copy made meanwhile; the encoder's is the one fine-tuned
    real_deepcopy = copy.deepcopy
    monkeypatch.setattr(classifier.copy, "deepcopy", lambda obj, *a: copies.append(real_deepcopy(obj, *a)) or copies[-1])
    metrics = PROTOCOLS.get("transfer")(encoder, train, test, ctx)
    (tuned,) = [c for c in copies if type(c) is type(encoder)]
    assert state_fingerprint(tuned) != original  # the fine-tuned copy moved
    assert state_fingerprint(encoder) == original  # the pretrained encoder, shared by other protocols, did not
    assert 0.0 <= metrics["top1"] <= 100.0 and metrics["epochs"] == cfg.transfer.epochs


def test_stratified_subsets_are_seeded_nested_and_balanced():
    labels = np.repeat(np.arange(4), [200, 60, 9, 1])
    np.random.default_rng(0).shuffle(labels)
    fractions = (0.01, 0.05, 0.1, 0.2)
    subsets = stratified_subsets(labels, fractions, seed=3)
    for fraction, positions in subsets.items():
        counts = np.bincount(labels[positions], minlength=4)
        assert counts.tolist() == [max(1, round(fraction * n)) for n in (200, 60, 9, 1)]  # every class, in proportion
        assert len(np.unique(positions)) == len(positions)
    assert set(subsets[0.01]) <= set(subsets[0.05]) <= set(subsets[0.1]) <= set(subsets[0.2])
    again = stratified_subsets(labels, fractions, seed=3)
    other = stratified_subsets(labels, fractions, seed=4)
    assert all(np.array_equal(subsets[f], again[f]) for f in fractions)
    assert not np.array_equal(subsets[0.2], other[0.2])
    with pytest.raises(ConfigError, match="semi_fractions"):
        stratified_subsets(labels, (0.0,), seed=0)


def test_semi_fine_tunes_once_per_fraction(synthetic_target, monkeypatch):
    cfg, spec, train, test = synthetic_target("random")
    cfg.eval.semi_fractions = (0.1, 0.5)
    encoder = create_method("random", cfg, spec).encoder_for_eval()
    sizes = []
    real = classifier.train_classifier
    monkeypatch.setattr("halp_bench.protocols.semi.train_classifier", lambda enc, sub, *a, **k: sizes.append(len(sub)) or real(enc, sub, *a, **k))
    metrics = PROTOCOLS.get("semi")(encoder, train, test, ProtocolContext(cfg=cfg, device=torch.device("cpu"), show_progress=False))
    per_class = np.bincount(train.labels)
    assert sizes == [sum(max(1, round(f * n)) for n in per_class) for f in (0.1, 0.5)]
    assert metrics["labelled@10%"] == sizes[0] and metrics["labelled@50%"] == sizes[1]
    assert {"top1@10%", "top5@10%", "final_top1@10%", "top1@50%"} <= set(metrics)


def _spec(tmp_path, extra: tuple[str, ...] = (), **kw) -> RunSpec:
    """A tiny run of `methods` (default moco) with the tiny settings they have, then `extra`."""
    base = dict(methods=["moco"], dataset="tiny-src", preset="cpu", out=tmp_path, show_progress=False)
    base.update(kw)
    return RunSpec(overrides=[*tiny_overrides(*base["methods"]), *extra], **base)


def test_one_pretraining_serves_knn_linear_and_transfer(tmp_path, monkeypatch):
    import halp_bench.methods.moco as moco_module
    import halp_bench.orchestration.grid as runner

    monkeypatch.setitem(TRANSFER_PAIRS, "tiny-src", "tiny-tgt")
    pretrain_calls, steps = [], []
    real_pretrain, real_step = runner.pretrain, moco_module.MoCo.training_step
    monkeypatch.setattr(runner, "pretrain", lambda *a, **k: pretrain_calls.append(a[0]) or real_pretrain(*a, **k))
    monkeypatch.setattr(moco_module.MoCo, "training_step", lambda self, b: steps.append(1) or real_step(self, b))

    outcomes = run_grid(_spec(tmp_path, extra=("eval.monitor_every=1",)), say=lambda _: None)
    assert [(o.protocol, o.status) for o in outcomes] == [("knn", "ran"), ("linear", "ran"), ("transfer", "ran")]
    assert pretrain_calls == ["moco"]  # one pretraining for three protocols
    rows = {r["protocol"]: r for r in load_results(tmp_path / "results.jsonl")}
    assert (rows["transfer"]["dataset"], rows["transfer"]["transfer_from"]) == ("tiny-tgt", "tiny-src/all")
    assert rows["knn"]["transfer_from"] is None and rows["knn"]["run_dir"] == rows["transfer"]["run_dir"]
    monitor = (tmp_path / "runs" / rows["knn"]["run_dir"].split("/")[-1] / "monitor.csv").read_text().splitlines()
    assert monitor[0] == "epoch,knn_top1" and [line.split(",")[0] for line in monitor[1:]] == ["1", "2"]

    # The same cell named from the target's side is already done.
    again = run_grid(_spec(tmp_path, dataset="tiny-tgt", protocols=["transfer"], transfer_from="tiny-src", extra=("eval.monitor_every=1",)), say=lambda _: None)
    assert [o.status for o in again] == ["skipped"]

    # Other fine-tuning settings make a new cell, but the source checkpoint is reused: no training step.
    steps.clear()
    later = run_grid(
        _spec(tmp_path, dataset="tiny-tgt", protocols=["transfer"], transfer_from="tiny-src:all", extra=("eval.monitor_every=1", "transfer.epochs=2")),
        say=lambda _: None,
    )
    assert [o.status for o in later] == ["ran"] and steps == []
    assert len(load_results(tmp_path / "results.jsonl")) == 4


def test_transfer_without_a_source_is_skipped_with_a_reason(tmp_path):
    outcomes = run_grid(_spec(tmp_path, methods=["random"], dataset="tiny-tgt", protocols=["knn", "transfer"]), say=lambda _: None)
    assert [(o.protocol, o.status) for o in outcomes] == [("knn", "ran"), ("transfer", "skipped")]
    assert "give --transfer-from" in outcomes[1].detail


def test_a_default_target_that_is_not_prepared_skips_transfer_only(tmp_path, monkeypatch):
    monkeypatch.setitem(TRANSFER_PAIRS, "tiny-src", "pku2")
    outcomes = run_grid(_spec(tmp_path, methods=["random"], extra=(f"data.data_root={tmp_path / 'no-data'}",)), say=lambda _: None)
    assert [(o.protocol, o.status) for o in outcomes] == [("knn", "ran"), ("linear", "ran"), ("transfer", "skipped")]
    assert "default transfer target 'pku2' is not available" in outcomes[2].detail and "not prepared" in outcomes[2].detail


def test_transfer_needs_the_same_encoder_input(tmp_path):
    with pytest.raises(ConfigError, match=r"encoder input differs .*3\*25\*2 = 150.*3\*20\*2 = 120"):
        run_grid(_spec(tmp_path, methods=["random"], dataset="tiny-20-joints", protocols=["transfer"], transfer_from="tiny-src"))
    with pytest.raises(ConfigError, match="--transfer-from applies to the transfer protocol"):
        run_grid(_spec(tmp_path, protocols=["knn"], transfer_from="tiny-src"))


@pytest.mark.parametrize("name", suite_names())
def test_every_suite_names_registered_methods_protocols_and_datasets(name):
    specs = suite_specs(name, RunSpec(overrides=["device=cpu"]))
    assert specs
    for spec in specs:
        assert all(m in METHODS for m in spec.methods or [])
        assert all(p in PROTOCOLS for p in spec.protocols or [])
        assert spec.dataset in DATASETS and spec.overrides[-1] == "device=cpu"  # --set comes last and wins
        make_configs(spec.preset, spec.overrides, spec.methods or METHODS.names())  # every override is a valid key


def test_suites_include_the_paper_tables_and_unknown_names_list_them():
    assert {"paper-table1", "paper-table2", "paper-table3", "synthetic-all"} <= set(suite_names())
    table3 = suite_specs("paper-table3", RunSpec())
    assert {(s.dataset, s.transfer_from) for s in table3} == {("pku2", "ntu60:xsub"), ("pku2", "ntu120:xsub")}
    kept = suite_specs("paper-table1", RunSpec(methods=["halp"], preset="cpu"), keep=("methods", "preset"))
    assert all(s.methods == ["halp"] and s.preset == "cpu" for s in kept)
    with pytest.raises(UnknownNameError, match="paper-table1"):
        suite_specs("nosuch", RunSpec())
