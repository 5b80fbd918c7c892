"""`halp-bench config`: each value of a method's recipe with where it came from, the identities a
run would store, and the same listing rebuilt from a stored row."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import random_skeletons, tiny_overrides
from halp_bench.config import flat_items, make_config
from halp_bench.methods.aimclr import AimCLR
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.orchestration.recipe import read_row, recipe_from_row, resolve_recipe
from halp_bench.registry import DATASETS
from halp_bench.results.row import read_rows


def test_values_and_their_sources_for_a_preset_method_and_dataset():
    recipe = resolve_recipe("aimclr", "official", "pku2", "xsub", 0, ["linear.epochs=50"])
    made = make_config("official", ["linear.epochs=50", "data.dataset=pku2", "data.split=xsub", "seed=0"], method="aimclr")
    assert recipe.values == {k: v for k, v in flat_items(made).items() if k != "device"}  # every key, as a run makes it
    declared = AimCLR.defaults_for("official", "pku2")
    source = recipe.sources
    assert (recipe.values["linear.epochs"], source["linear.epochs"]) == (50, "--set")
    assert (recipe.values["encoder.name"], source["encoder.name"]) == ("stgcn", "run_defaults AimCLR")
    assert (recipe.values["pretrain.epochs"], source["pretrain.epochs"]) == (declared["pretrain.epochs"], "run_defaults AimCLR")
    assert (recipe.values["eval.report"], source["eval.report"]) == ("best", "preset official")  # the official code's reporting
    assert (recipe.values["transfer.lr"], source["transfer.lr"]) == (0.01, "default")
    assert (recipe.values["data.dataset"], source["data.dataset"]) == ("pku2", "--dataset")
    assert {k for k, v in source.items() if v == "run_defaults AimCLR"} <= set(declared)
    official = resolve_recipe("halp", "official", "ntu60", "xsub")
    assert (official.values["encoder.name"], official.sources["encoder.name"]) == ("bigru_official", "preset official")
    assert resolve_recipe("halp", "paper", "ntu60", "xsub").sources["encoder.name"] == "default"


def test_the_common_protocol_keeps_the_method_probe_out_of_the_sources():
    recipe = resolve_recipe("aimclr", "cpu", "synthetic", "xsub", 0, ["eval.protocol=common"])
    assert recipe.sources["linear.lr"] != "run_defaults AimCLR" and recipe.values["linear.lr"] == make_config("cpu").linear.lr


def test_a_stored_row_turns_back_into_its_recipe(tmp_path):
    if "tiny-recipe" not in DATASETS:
        DATASETS.add("tiny-recipe", lambda cfg: random_skeletons(n=24, t=12), "test data")
    overrides = [*tiny_overrides("halp"), "method.lam=0.6"]
    run_grid(
        RunSpec(methods=["halp"], dataset="tiny-recipe", protocols=["knn"], preset="cpu", overrides=overrides, seeds=[1], out=tmp_path, show_progress=False),
        say=lambda _: None,
    )
    (row,) = read_rows(tmp_path / "results.jsonl")
    recipe = recipe_from_row(read_row(f"{tmp_path / 'results.jsonl'}:1"))
    assert recipe.cells["knn"] == row.config_id and row.run_dir.endswith(recipe.run_dir) and recipe.run_dir.endswith(recipe.pretrain_id)
    assert "method.lam=0.6" in recipe.overrides and (recipe.values["method.lam"], recipe.sources["method.lam"]) == (0.6, "--set")
    assert row.variant == "λ=0.6, N=4"  # the label part of its ablation settings (tiny N=4), stored by the run
    again = resolve_recipe("halp", "cpu", "tiny-recipe", row.split, 1, recipe.overrides)
    assert again.lines() == recipe.lines()


@pytest.mark.parametrize("reference", ["no-such-file.jsonl:1", "results.jsonl", "results.jsonl:x"])
def test_a_bad_row_reference_is_one_line(tmp_path, reference):
    (tmp_path / "results.jsonl").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "halp_bench.cli", "config", "--from-row", reference], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "--from-row" in result.stderr and "Traceback" not in result.stderr


def test_list_states_each_method_declarations():
    from halp_bench.declarations import method_overview
    from halp_bench.suites import load_suite

    seen = method_overview("skeletonclr")
    assert (seen["declaration"].family, seen["declaration"].compared_to) == ("field", "moco")
    assert seen["encoders"]["paper"] == "stgcn" and seen["encoders"]["cpu"] == "bigru"  # its run_defaults, per preset
    assert not seen["bare_run"] and "field" in seen["suites"]
    assert all("skeletonclr" in [m for e in load_suite(s)["entries"] for m in e.get("methods") or []] for s in seen["suites"])
    assert seen["run_defaults"]["paper"]["linear.lr"] == 3.0
    halp = method_overview("halp_hardest")
    assert (halp["declaration"].family, halp["declaration"].compared_to, halp["bare_run"]) == ("ablations", "halp", True)


def test_config_command_prints_json_per_method():
    import json

    result = subprocess.run(
        [sys.executable, "-m", "halp_bench.cli", "config", "--methods", "moco,halp", "--split", "xsub", "--set", "method.lam=0.6", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    moco, halp = (json.loads(line) for line in result.stdout.splitlines())
    assert (moco["preset"], halp["sources"]["method.lam"], halp["values"]["method.lam"]) == ("cpu", "--set", 0.6)  # auto: cpu
    assert "method.lam" not in moco["values"]  # a key of another method applies to the methods that have it
    assert halp["pretrain_id"] == resolve_recipe("halp", "cpu", "synthetic", "xsub", 0, ["method.lam=0.6"]).pretrain_id
