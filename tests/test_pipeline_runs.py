"""Data pipelines in a run: each method on its family's pipeline over raw prepared data, one
pipeline for all under the common protocol, and the pipeline recorded in every row."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import random_skeletons, tiny_overrides
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.registry import DATASETS
from halp_bench.results.store import load_results


@pytest.fixture(scope="module", autouse=True)
def _raw_dataset():
    """Random skeletons with four bodies, marked as `prepare` marks raw camera coordinates."""
    if "tiny-raw" not in DATASETS:
        DATASETS.add("tiny-raw", lambda cfg: dataclasses.replace(random_skeletons(n=24, t=12, m=4), stored="raw"), "test data")


def _run(tmp_path, *extra: str) -> dict[str, dict]:
    methods = ["moco", "skeletonclr"]
    spec = RunSpec(
        methods=methods, dataset="tiny-raw", protocols=["knn"], preset="cpu", out=tmp_path, show_progress=False, overrides=[*tiny_overrides(*methods), *extra]
    )
    assert [o.status for o in run_grid(spec, say=lambda _: None)] == ["ran", "ran"]
    return {row["method"]: row for row in load_results(tmp_path / "results.jsonl")}


def test_each_family_gets_its_pipeline_and_rows_name_it(tmp_path):
    rows = _run(tmp_path / "own")
    assert rows["moco"]["config"]["data"]["pipeline"] == "agcn" and rows["skeletonclr"]["config"]["data"]["pipeline"] == "stgcn"
    assert rows["skeletonclr"]["settings"]["pipeline"] == "stgcn"
    assert rows["moco"]["data_fingerprint"] != rows["skeletonclr"]["data_fingerprint"]  # other data, other fingerprint


def test_common_protocol_puts_every_method_on_one_pipeline(tmp_path):
    common = _run(tmp_path / "common", "eval.protocol=common")
    assert {row["config"]["data"]["pipeline"] for row in common.values()} == {"agcn"}
    chosen = _run(tmp_path / "chosen", "eval.protocol=common", "data.pipeline=mamp")
    assert {row["config"]["data"]["pipeline"] for row in chosen.values()} == {"mamp"}
