"""`halp-bench plot`: curves from the run directories named by result rows; matplotlib optional."""

from __future__ import annotations

import sys

import pytest

from halp_bench.errors import ConfigError
from halp_bench.results.plots import find_runs, plot_curves
from halp_bench.results.row import ResultRow


@pytest.fixture
def stored_run(tmp_path):
    """A results file whose row names its run directory relative to another working directory."""
    run_dir = tmp_path / "runs" / "moco_synthetic_xsub_cpu_seed0_abc"
    run_dir.mkdir(parents=True)
    (run_dir / "log.csv").write_text("epoch,seconds,loss\n1,0.5,5.0\n2,0.5,4.0\n2,0.5,3.9\n3,0.5,3.5\n")  # epoch 2 logged twice
    (run_dir / "monitor.csv").write_text("epoch,knn_top1\n1,20.0\n3,30.0\n")
    row = ResultRow(
        method="moco",
        dataset="synthetic",
        split="xsub",
        protocol="knn",
        transfer_from=None,
        preset="cpu",
        seed=0,
        config_id="x",
        metrics={},
        run_dir="elsewhere/runs/" + run_dir.name,
    )
    return [(row, tmp_path / "results.jsonl")]


def test_runs_are_found_and_a_repeated_epoch_keeps_its_last_row(stored_run):
    (run,) = find_runs(stored_run)
    assert run.label == "moco seed 0, synthetic/xsub"
    assert run.loss["epoch"].tolist() == [1, 2, 3] and run.loss["loss"].tolist() == [5.0, 3.9, 3.5]
    assert run.knn["knn_top1"].tolist() == [20.0, 30.0]
    assert find_runs(stored_run, methods=["halp"]) == []


def test_plot_writes_png_and_svg(stored_run, tmp_path):
    paths = plot_curves(find_runs(stored_run), tmp_path / "plots" / "curves", ("png", "svg"))
    assert [p.name for p in paths] == ["curves.png", "curves.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()


def test_missing_matplotlib_is_a_clear_error(stored_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'halp-bench\[plot\]'"):
        plot_curves(find_runs(stored_run), tmp_path / "curves")
