"""Training logs: TensorBoard event files hold the CSV log's numbers (also after a resume), W&B
offline writes its runs, a missing extra is one clear line."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import random_skeletons, tiny_config, tiny_overrides
from halp_bench.common.loggers import WANDB_ID_FILE, TensorBoardLogger, parse_loggers
from halp_bench.datasets.base import SkeletonData
from halp_bench.engine.pretrain import CHECKPOINT_FILE, LOG_FILE, pretrain
from halp_bench.errors import ConfigError
from halp_bench.methods.base import create_method
from halp_bench.orchestration.evaluate import EvalSpec, run_eval
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.orchestration.run_dirs import MONITOR_FILE
from halp_bench.registry import DATASETS
from halp_bench.results.row import read_rows


@pytest.fixture(scope="module", autouse=True)
def _tiny_dataset():
    if "tiny-random" not in DATASETS:
        DATASETS.add("tiny-random", lambda cfg: random_skeletons(n=24, t=12), "test data")


def _spec(tmp_path: Path, loggers: tuple[str, ...], methods: tuple[str, ...] = ("moco",)) -> RunSpec:
    return RunSpec(
        methods=list(methods),
        dataset="tiny-random",
        protocols=["knn", "linear"],
        preset="cpu",
        out=tmp_path,
        show_progress=False,
        overrides=[*tiny_overrides(*methods), "eval.monitor_every=1", "pretrain.epochs=3", "pretrain.milestones=2"],
        loggers=loggers,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard run in `log_dir`, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_unknown_logger_and_missing_extra_are_clear_errors(monkeypatch):
    assert parse_loggers("csv") == ("csv",)
    with pytest.raises(ConfigError, match="choose one or more of csv, tensorboard, wandb"):
        parse_loggers("csv,mlflow")
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ConfigError, match=r"--logger wandb needs the wandb package: pip install 'halp-bench\[wandb\]'"):
        parse_loggers("csv,wandb")


def test_missing_extra_on_the_command_line_is_one_line_exit_2(tmp_path):
    code = (
        "import sys; sys.modules['torch.utils.tensorboard'] = None; from halp_bench.cli import main; "
        f"sys.argv = ['halp-bench', 'run', '--logger', 'tensorboard', '--out', {str(tmp_path)!r}]; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "pip install 'halp-bench[tensorboard]'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_tensorboard_scalars_equal_the_csv_log_and_the_rows(tmp_path):
    pytest.importorskip("tensorboard")
    run_grid(_spec(tmp_path, ("csv", "tensorboard")), say=lambda _: None)
    rows = {row.protocol: row for row in read_rows(tmp_path / "results.jsonl")}
    run_dir = Path(rows["knn"].run_dir)
    logged = scalars(run_dir)  # the pretraining's run: named after its run directory
    log = read_csv(run_dir / LOG_FILE)
    assert [step for step, _ in logged["pretrain/loss"]] == [1, 2, 3]
    for name in [column for column in log[0] if column != "epoch"]:
        tag = "pretrain/epoch_seconds" if name == "seconds" else f"pretrain/{name}"
        expected = [(int(line["epoch"]), float(line[name])) for line in log]
        assert [step for step, _ in logged[tag]] == [step for step, _ in expected]
        assert [value for _, value in logged[tag]] == pytest.approx([value for _, value in expected], rel=1e-5, abs=1e-4)
    monitor = read_csv(run_dir / MONITOR_FILE)
    assert logged["pretrain/knn_top1"] == [(int(m["epoch"]), pytest.approx(float(m["knn_top1"]), abs=1e-3)) for m in monitor]
    assert [value for _, value in logged["pretrain/lr"]] == pytest.approx([0.05, 0.05, 0.005])  # x0.1 at epoch 2
    assert all(value > 0 for _, value in logged["pretrain/peak_memory_mb"])
    for protocol, row in rows.items():  # each cell is a run of its own, <run>/<protocol>-<config id>
        cell = scalars(run_dir / f"{protocol}-{row.config_id}")
        assert cell[f"{protocol}/top1"][-1][1] == pytest.approx(row.metrics["top1"], abs=1e-4)
    linear_dir = run_dir / f"linear-{rows['linear'].config_id}"
    linear = scalars(linear_dir)
    assert [step for step, _ in linear["linear/loss"]] == [1, 2]
    assert {"linear/lr", "linear/epoch_seconds", "linear/peak_memory_mb"} <= set(linear)
    run_eval(
        EvalSpec(
            checkpoint=run_dir / CHECKPOINT_FILE,
            dataset="tiny-random",
            protocols=["knn"],
            preset="cpu",
            out=tmp_path / "eval",
            overrides=_spec(tmp_path, ()).overrides,
            show_progress=False,
            loggers=("csv", "tensorboard"),
        ),
        say=lambda _: None,
    )
    (evaluated,) = read_rows(tmp_path / "eval" / "results.jsonl")  # `eval --checkpoint` cells: runs/eval_<method>_<sha256>/...
    cell = scalars(tmp_path / "eval" / "runs" / f"eval_moco_{evaluated.weights['sha256'][:10]}" / f"knn-{evaluated.config_id}")
    assert cell["knn/top1"] == [(0, pytest.approx(evaluated.metrics["top1"], abs=1e-4))]
    run_grid(dataclasses.replace(_spec(tmp_path, ("csv", "tensorboard")), force=True, protocols=["linear"]), say=lambda _: None)
    assert len(list(linear_dir.glob("events.out.tfevents.*"))) == 2  # a cell run again replaces its curves
    assert [step for step, _ in scalars(linear_dir)["linear/loss"]] == [1, 2]
    assert [step for step, _ in scalars(run_dir)["pretrain/loss"]] == [1, 2, 3]  # retrained (--force): shown once


def test_a_resumed_pretraining_logs_each_epoch_once(tmp_path, one_thread):
    pytest.importorskip("tensorboard")
    cfg = tiny_config("moco", "pretrain.epochs=3", "pretrain.milestones=2")
    data: SkeletonData = random_skeletons(n=24, t=12)
    train, _ = data.split()
    run_dir = tmp_path / "run"
    saved = tmp_path / "after_epoch_1.pt"

    def train_once(on_epoch_end=None):
        torch.manual_seed(0)
        method = create_method("moco", cfg, data.spec(cfg.data.frames))
        logger = TensorBoardLogger(run_dir)
        try:
            return pretrain(
                "moco", method, train, cfg, torch.device("cpu"), run_dir, show_progress=False, say=lambda _: None, on_epoch_end=on_epoch_end, logger=logger
            )
        finally:
            logger.close()

    first = train_once(lambda epoch: shutil.copy(run_dir / CHECKPOINT_FILE, saved) if epoch == 1 else None)
    shutil.copy(saved, run_dir / CHECKPOINT_FILE)  # as if the run had been killed during epoch 2 or 3
    resumed = train_once()
    assert resumed.resumed_from == 1 and len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    logged = scalars(run_dir)
    assert [step for step, _ in logged["pretrain/loss"]] == [1, 2, 3]  # not 1, 2, 3, 2, 3
    log = read_csv(run_dir / LOG_FILE)
    assert [value for _, value in logged["pretrain/loss"]] == pytest.approx([float(line["loss"]) for line in log], rel=1e-5)
    assert [value for _, value in logged["pretrain/loss"]] == pytest.approx([losses["loss"] for losses in first.losses], rel=1e-6)


def test_wandb_offline_writes_its_runs(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for name in ("WANDB_DIR", "WANDB_PROJECT", "WANDB_CONSOLE", "WANDB_SILENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")  # no network, no account
    run_grid(_spec(tmp_path, ("wandb",)), say=lambda _: None)
    rows = read_rows(tmp_path / "results.jsonl")
    run_dir = Path(rows[0].run_dir)
    run_id = (run_dir / WANDB_ID_FILE).read_text().strip()
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 3  # the pretraining and one per protocol cell
    (pretraining,) = [r for r in runs if r.name.endswith(f"-{run_id}")]
    record = (pretraining / f"run-{run_id}.wandb").read_bytes()
    assert run_dir.name.encode() in record and b"pretrain/loss" in record and b"pretrain/knn_top1" in record
    assert json.dumps(rows[0].pretrain.final_loss["loss"]).encode() in record  # the last epoch's loss, as log.csv has it
