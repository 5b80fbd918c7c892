"""Tables compare like with like: rows are paired, labelled and given cost ratios by their comparison
key (everything but the method), ordered by what their methods declare, and read from JSON alone.

The store: moco on two encoders, halp and moco on one of them with 3 seeds, and an external
plugin method (`compared_to = "moco"`) on a third encoder. Its comparison keys are written as a
run writes them (identity.comparison_key), so the test also checks which settings enter the key.
"""

from __future__ import annotations

import copy
import math

import pytest
from scipy import stats

from halp_bench.declarations import Declaration
from halp_bench.identity import comparison_key
from halp_bench.results.row import PretrainSummary, ResultRow
from halp_bench.results.tables import build_tables, to_latex, to_markdown

ENCODERS = {
    "bigru": ({"name": "bigru", "hidden_size": 128, "num_layers": 1}, "bigru 1x128"),
    "transformer": ({"name": "transformer", "depth": 8, "width": 256}, "transformer 8x256"),
    "tcn": ({"name": "tcn", "channels": 64, "layers": 4}, "tcn 4x64"),
}
DECLARED = {
    "moco": Declaration(family="paper", order=1),
    "halp": Declaration(family="paper", order=2, compared_to="moco", ablation_keys={"lam": "λ"}),
    "skel_mae": Declaration(compared_to="moco"),  # an external plugin: family "plugins" by default
}
LINEAR = {"moco": {"bigru": [60.0, 62.0, 61.0], "transformer": [70.0]}, "halp": {"bigru": [62.1, 63.9, 63.0]}, "skel_mae": {"tcn": [75.0]}}
SECONDS = {("moco", "bigru"): 2.0, ("moco", "transformer"): 5.0, ("halp", "bigru"): 2.5, ("skel_mae", "tcn"): 4.0}


def _row(method: str, encoder: str, seed: int, top1: float, protocol: str = "linear") -> ResultRow:
    """A row as a run stores it (format 3), with its own method settings and the key the pipeline computes."""
    settings, described = ENCODERS[encoder]
    own = {"lam": 0.8, "queue_size": 1024} if method == "halp" else {"queue_size": 1024}
    pretraining = {
        "method_name": method,
        "method": own,
        "encoder": settings,
        "data": {"dataset": "d", "frames": 16},
        "augment": {"crop_min_scale": 0.1},
        "pretrain": {"epochs": 60, "lr": 0.05},
        "precision": "32",
        "sync_batchnorm": False,
        "seed": seed,
    }
    config = {
        "seed": seed,
        "preset": "cpu",
        "method": own,
        "encoder": settings,
        "data": {"dataset": "d", "split": "s", "frames": 16},
        "eval": {"stream": "joint", "test_crop": 0.95, "batch_size": 64, "eval_every": 5, "report": "final"},
        "linear": {"epochs": 20, "lr": 0.1},
    }
    key = comparison_key(protocol, config, pretraining, preset="cpu", transfer_from=None, data="fp")
    return ResultRow(
        method=method,
        dataset="d",
        split="s",
        protocol=protocol,
        transfer_from=None,
        preset="cpu",
        seed=seed,
        config_id=f"{method}-{encoder}-{protocol}",
        metrics={"top1": top1},
        config=config,
        pretrain_config=pretraining,
        settings={"encoder": described},
        pretrain=PretrainSummary(epochs=60, time_per_epoch_s=SECONDS[(method, encoder)], peak_memory_increase_mb=100.0),
        declaration=DECLARED[method].to_dict(),
        comparison_key=key,
        finished=f"{seed}",
    )


@pytest.fixture(scope="module")
def rows() -> list[ResultRow]:
    return [
        _row(method, encoder, seed, top1) for method, by_encoder in LINEAR.items() for encoder, values in by_encoder.items() for seed, top1 in enumerate(values)
    ]


def test_the_key_is_everything_but_the_method(rows):
    """The method's name, its own settings and the seed stay out of the key; the encoder, the
    protocol's settings and the data fingerprint are in it."""
    moco, halp = _row("moco", "bigru", 0, 1.0), _row("halp", "bigru", 1, 1.0)
    assert moco.comparison_key == halp.comparison_key
    assert moco.comparison_key != _row("moco", "transformer", 0, 1.0).comparison_key
    config, pretraining = copy.deepcopy(moco.config), moco.pretrain_config
    base = dict(preset="cpu", transfer_from=None, data="fp")
    config["linear"]["lr"] = 0.01
    assert comparison_key("linear", config, pretraining, **base) != moco.comparison_key
    assert comparison_key("knn", config, pretraining, **base) == comparison_key("knn", moco.config, pretraining, **base)  # knn reads no linear.*
    assert comparison_key("linear", moco.config, pretraining, **{**base, "data": "other"}) != moco.comparison_key


def test_differences_pair_only_rows_of_one_key(rows):
    (differences,) = build_tables(rows, ("differences",))
    text = to_markdown(differences)
    gaps = [2.1, 1.9, 2.0]  # halp − moco per seed, on the BiGRU
    half = stats.t.ppf(0.975, 2) * stats.tstd(gaps) / math.sqrt(3)
    assert f"| halp − moco · bigru 1x128 | +2.0 [+{2.0 - half:.1f}, +{2.0 + half:.1f}] (n=3) |" in text
    assert [label for label, _ in differences.rows] == ["halp − moco · bigru 1x128"]  # no number for the plugin
    assert any(note.startswith("Not paired: skel_mae (linear) is compared to moco") for note in differences.notes)


def test_labels_name_the_encoder_and_rows_follow_the_declared_order(rows):
    (linear,) = build_tables(rows, ("linear",))
    assert [label for label, _ in linear.rows] == ["moco · bigru 1x128", "moco · transformer 8x256", "halp", "skel_mae"]
    assert r"moco $\cdot$ transformer 8x256" in to_latex(linear)


def test_cost_ratios_for_every_row_with_a_same_key_base(rows):
    (cost,) = build_tables(rows, ("cost",))
    cells = dict(cost.rows)
    assert cells["halp"]["base"] == "moco · bigru 1x128" and cells["halp"]["time ×base"].mean == pytest.approx(2.5 / 2.0)
    assert "time ×base" not in cells["skel_mae"] and "time ×base" not in cells["moco · transformer 8x256"]
    assert any(note.startswith("No ratio for skel_mae") for note in cost.notes)


def test_long_labels_get_a_numbered_legend(rows):
    more = [copy.deepcopy(row) for row in rows if row.method == "moco" and row.settings["encoder"] == "bigru 1x128"]
    for row in more:  # same encoder, another probe: a label naming three more settings
        row.config = {**row.config, "linear": {"epochs": 90, "lr": 0.003, "weight_decay": 0.0001}}
        row.config_id += "-long"
    (linear,) = build_tables(rows + more, ("linear",))
    labels = [label for label, _ in linear.rows]
    legend = next(note for note in linear.notes if note.startswith("Labels: "))
    assert labels == ["moco [1]", "moco [2]", "moco [3]", "halp", "skel_mae"]  # never cut: each spelled out below
    assert "[2] moco · bigru 1x128 [linear.epochs=90, linear.lr=0.003, linear.weight_decay=0.0001]" in legend
    assert "[3] moco · transformer 8x256 [linear.epochs=20, linear.lr=0.1, linear.weight_decay=None]" in legend


def test_labels_name_only_what_the_cell_id_hashes(rows):
    """A row stored before a setting existed (no eval.train_rotation, no finetune section) beside
    today's row of another probe lr: the labels name linear.lr alone, not the settings the old row
    lacks (neutral where absent) nor those the linear protocol never reads."""
    today = [copy.deepcopy(row) for row in rows if row.method == "halp"]
    for row in today:
        extra = {"eval": {**row.config["eval"], "train_rotation": 0.0, "head_std": 0.01}, "finetune": {"epochs": 10, "head": "linear"}}
        row.config = {**row.config, **extra, "linear": {"epochs": 20, "lr": 3.0}}
        row.config_id += "-lr3"
    (linear,) = build_tables(rows + today, ("linear",))
    assert [label for label, _ in linear.rows if label.startswith("halp")] == ["halp [linear.lr=0.1]", "halp [linear.lr=3.0]"]


def test_ablation_label_part_is_stored_not_recomputed(rows):
    variant = _row("halp", "bigru", 0, 61.0)
    variant.variant, variant.config_id = "λ=0.6", "halp-0.6"
    (linear,) = build_tables([*rows, variant], ("linear",))
    assert "halp (λ=0.6)" in [label for label, _ in linear.rows]
