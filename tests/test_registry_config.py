"""Registry and configuration errors are clear and name what is valid."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from halp_bench.config import RunConfig, make_config
from halp_bench.errors import ConfigError, UnknownNameError
from halp_bench.methods.base import default_methods
from halp_bench.registry import METHODS, Registry


def test_registry_rejects_duplicates_and_lists_known_names():
    reg: Registry = Registry("widget")
    reg.add("a", object, "first")
    with pytest.raises(ConfigError, match="registered twice"):
        reg.add("a", object)
    with pytest.raises(UnknownNameError, match="unknown widget 'b'; choose one of: a"):
        reg.get("b")


def test_builtin_methods_are_registered():
    assert {"moco", "random"} <= set(METHODS.names())


def test_set_overrides_convert_types():
    cfg = make_config("cpu", ["method.temperature=0.2", "pretrain.milestones=3,4", "encoder.num_layers=2", "eval.report=best"], method="halp")
    assert cfg.method.temperature == 0.2 and cfg.pretrain.milestones == (3, 4)
    assert cfg.encoder.num_layers == 2 and cfg.eval.report == "best"


@pytest.mark.parametrize(
    "override, message",
    [
        ("method.nope=1", "unknown key 'nope'"),
        ("nope.x=1", "unknown key 'nope'"),
        ("method.temperature=warm", "expected float"),
        ("pretrain.epochs=1.5", "expected int"),
        ("method", "expected KEY=VALUE"),
        ("encoder=3", "is a section"),
    ],
)
def test_bad_set_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        make_config("cpu", [override])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'fast'; choose one of: paper, official, cpu"):
        make_config("fast")


def test_word_settings_are_checked_when_the_config_is_made_and_match_the_parts():
    from halp_bench.common.precision import PRECISIONS
    from halp_bench.config import CHOICES
    from halp_bench.methods.stream_encoders import STREAM_CHOICES

    assert CHOICES["eval.stream"] == STREAM_CHOICES  # the lists config cannot import (their modules import torch)
    assert CHOICES["precision"] == PRECISIONS
    with pytest.raises(ConfigError, match="eval.report=latest: choose one of final, best"):
        make_config("cpu", ["eval.report=latest"])
    with pytest.raises(ConfigError, match="method.t_sampling=later: choose one of paper, official, hardest"):
        make_config("cpu", ["method.t_sampling=later"], method="halp")
    with pytest.raises(ConfigError, match="pretrain.optimizer=adam: choose one of sgd, adamw"):
        make_config("cpu", ["pretrain.optimizer=adam"])


def test_a_stored_config_is_rebuilt_as_typed_settings():
    from halp_bench.config import config_from_dict

    cfg = make_config("cpu", ["method.lam=0.6", "encoder.hidden_size=32", "pretrain.milestones=3,4", "data.frames=12"], method="halp")
    assert config_from_dict("halp", cfg.to_dict()) == cfg
    stored = cfg.to_dict()
    stored["method"]["nope"] = 1
    with pytest.raises(ConfigError, match="stored method settings nope are unknown to HaLPSettings"):
        config_from_dict("halp", stored)


def test_settings_added_later_stay_out_of_identities_at_their_neutral_value():
    from halp_bench.identity import pretrain_id, pretrain_signature

    sgd, adamw = make_config("cpu"), make_config("cpu", ["pretrain.optimizer=adamw"])
    assert "optimizer" not in pretrain_signature("moco", sgd)["pretrain"]  # as before the setting existed
    assert pretrain_signature("moco", adamw)["pretrain"]["optimizer"] == "adamw"
    assert pretrain_id("moco", sgd) != pretrain_id("moco", adamw)


def test_rows_of_the_first_format_get_the_identity_todays_code_gives_their_settings():
    from pathlib import Path

    from halp_bench.config import config_from_dict
    from halp_bench.identity import config_id
    from halp_bench.results.row import read_rows

    rows = read_rows(Path(__file__).parent / "golden" / "results.jsonl")  # written in format 1
    for row in rows:
        cfg = config_from_dict(row.method, row.config)
        pre = cfg if row.transfer_from is None else None
        if pre is not None:  # transfer rows were pretrained elsewhere; their source config is in pretrain_config
            assert config_id(row.method, row.protocol, cfg, pre) == row.config_id, (row.method, row.protocol)
    seeds = {(r.method, r.protocol, r.dataset, r.split, r.report): set() for r in rows}
    for r in rows:
        seeds[(r.method, r.protocol, r.dataset, r.split, r.report)].add(r.config_id)
    assert {len(ids) for key, ids in seeds.items() if key[0] != "halp"} == {1}  # seeds of one setting share one id


def test_common_protocol_drops_each_methods_own_protocol_values_and_keeps_its_recipe():
    """MoCo's official run_defaults probe at lr 0.005 (HaLP's script); `eval.protocol=common` gives it the
    preset's probe instead, while its pretraining and encoder stay the official ones."""
    own = make_config("official", [], method="moco")
    common = make_config("official", ["eval.protocol=common"], method="moco")
    assert own.linear.lr == 0.005 and common.linear.lr == RunConfig().linear.lr == 0.1
    assert common.encoder == own.encoder and common.pretrain == own.pretrain and common.method == own.method
    with pytest.raises(ConfigError, match="eval.protocol=mine: choose one of method, common"):
        make_config("cpu", ["eval.protocol=mine"], method="moco")


def test_a_bare_run_trains_the_methods_of_the_default_grid(monkeypatch):
    assert {"random", "moco", "halp", "cmd", "halp_cmd", "halp_hardest", "halp_qk", "halp_zq"} <= set(default_methods())  # the paper's rows
    assert not {"skeletonclr", "crossclr", "crossclr_b", "aimclr", "mamp", "mae_coords"} & set(default_methods())  # the field's: by name or --suite field
    monkeypatch.setattr(METHODS.get("halp_zq"), "in_default_grid", False)
    assert "halp_zq" not in default_methods() and "halp" in default_methods()


def test_run_defaults_for_one_encoder_come_last_and_only_with_it():
    from halp_bench.methods.base import Method

    class Parent(Method):
        run_defaults: ClassVar[dict[str, dict[str, Any]]] = {
            "*": {"pretrain.lr": 0.1},
            "cpu": {"pretrain.epochs": 5},
            "cpu@stgcn": {"pretrain.epochs": 9, "pretrain.lr": 0.2},
        }

    class Child(Parent):
        run_defaults: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"pretrain.epochs": 6}, "cpu@stgcn": {"pretrain.batch_size": 8}}

    assert Child.defaults_for("cpu") == {"pretrain.lr": 0.1, "pretrain.epochs": 6}
    assert Child.defaults_for("cpu", encoder="stgcn") == {"pretrain.lr": 0.2, "pretrain.epochs": 9, "pretrain.batch_size": 8}
    assert Child.defaults_for("paper", encoder="stgcn") == {"pretrain.lr": 0.1}
