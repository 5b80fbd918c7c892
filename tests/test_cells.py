"""The one cell pipeline (cells.run_cell): a done cell is skipped without training, a cell runs its
protocol once on the obtained encoder and stores one row with what tables need, and a failing
pretraining or protocol is an outcome, not an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from halp_bench.common.loggers import RunLogger
from halp_bench.config import make_config
from halp_bench.identity import comparison_key, config_id, pretrain_signature
from halp_bench.orchestration.cells import Cell, CellStore, CellWork, Pretrained, run_cell
from halp_bench.registry import PROTOCOLS, register_protocol
from halp_bench.results.row import read_rows

if "test_mean" not in PROTOCOLS:

    @register_protocol("test_mean", "the encoder's number times the training set's size (test only)")
    def _test_mean(encoder, train, test, ctx):
        if encoder == "broken":
            raise RuntimeError("no features")
        return {"top1": float(encoder) * len(train)}


def _work(tmp_path: Path, obtained: list[str], encoder: object = 2.5, failure: str = "") -> tuple[Cell, CellWork, CellStore]:
    cfg = make_config("cpu", ["method.lam=0.6", "data.split=xsub"], method="halp")
    cell = Cell("halp", "synthetic", "xsub", "test_mean", "cpu", 0, None, config_id("halp", "test_mean", cfg, cfg), tmp_path / "run")

    def obtain() -> Pretrained:
        obtained.append(cell.method)
        return Pretrained(failure=failure, user_error=bool(failure)) if failure else Pretrained(encoder=encoder)

    work = CellWork(
        cfg, [0] * 4, [0] * 2, {"evaluated_on": {"hash": "abc"}}, obtain, "cpu", RunLogger, lambda source: {"pretrain_config": pretrain_signature("halp", cfg)}
    )  # as the runner stores it
    return cell, work, CellStore(tmp_path / "results.jsonl", {})


def test_a_cell_runs_once_stores_its_row_and_is_then_done(tmp_path):
    obtained: list[str] = []
    cell, work, store = _work(tmp_path, obtained)
    outcome = run_cell(cell, work, store, say=lambda _: None)
    assert (outcome.status, outcome.metrics) == ("ran", {"top1": 10.0}) and obtained == ["halp"]
    (row,) = read_rows(store.results_path)
    assert row.key == cell.key and row.metrics == {"top1": 10.0}
    assert row.declaration["compared_to"] == "moco" and row.declaration["family"] == "paper" and row.variant == "λ=0.6"
    assert row.comparison_key == comparison_key("test_mean", work.cfg, pretrain_signature("halp", work.cfg), preset="cpu", transfer_from=None, data="abc")
    from halp_bench.declarations import row_table_fields

    old = {k: v for k, v in row.to_dict().items() if k not in ("declaration", "variant", "comparison_key")}  # a row of format 2
    assert row_table_fields(old) == {"declaration": row.declaration, "variant": row.variant, "comparison_key": row.comparison_key}
    again = run_cell(cell, work, CellStore(store.results_path, {r.key: r for r in read_rows(store.results_path)}), say=lambda _: None)
    assert again.status == "skipped" and obtained == ["halp"]  # done: nothing trained, nothing appended
    assert len(read_rows(store.results_path)) == 1


@pytest.mark.parametrize(
    "encoder, failure, expected", [(2.5, "loss 'loss' is nan at epoch 3", "loss 'loss' is nan at epoch 3"), ("broken", "", "RuntimeError: no features")]
)
def test_a_failing_pretraining_or_protocol_is_an_outcome(tmp_path, encoder, failure, expected):
    cell, work, store = _work(tmp_path, [], encoder=encoder, failure=failure)
    outcome = run_cell(cell, work, store, say=lambda _: None)
    assert (outcome.status, outcome.detail, outcome.user_error) == ("failed", expected, bool(failure))
    assert not store.results_path.exists()
