"""Data-parallel pretraining: 2 gloo processes on CPU (as torchrun would start them) of `moco` and
`halp` finish with finite losses, identical queues and prototypes on both ranks (keys are gathered
before the push; k-means is seeded identically), and rank 0 alone writes: one results row per
cell, one checkpoint per run, one TensorBoard log (when the extra is installed)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from conftest import tiny_overrides

WORLD = 2
METHODS = ["moco", "halp"]
LOGGERS = ("csv", "tensorboard") if importlib.util.find_spec("tensorboard") else ("csv",)


def _worker(rank: int, root: str, port: int, out: str = "out", methods: tuple[str, ...] = tuple(METHODS), stop_at: int = -1) -> None:
    """One rank of a `run_grid` call; with `stop_at` >= 0 the first attempt fails at that global step on
    every rank (as a preempted job would stop) and a second one resumes from the checkpoint."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    import halp_bench.orchestration.grid as runner
    from halp_bench.registry import load_plugins

    load_plugins()
    real_pretrain = runner.pretrain

    def recording_pretrain(method_name, method, *args, **kwargs):
        result = real_pretrain(method_name, method, *args, **kwargs)
        state = {k: v for k, v in method.state_dict().items() if k.startswith(("queue.", "prototype_states."))}
        state["params"] = torch.cat([p.detach().flatten() for p in method.parameters()])
        torch.save(state, Path(root) / out / f"{method_name}_rank{rank}.pt")
        return result

    runner.pretrain = recording_pretrain
    spec = runner.RunSpec(
        methods=list(methods),
        dataset=str(Path(root) / "tiny.npz"),
        protocols=["knn"],
        preset="cpu",
        overrides=[*tiny_overrides(*methods), "pretrain.batch_size=8", "checkpoint_every_iters=1"],
        out=Path(root) / out,
        show_progress=False,
        loggers=LOGGERS,
    )
    if stop_at >= 0:
        from halp_bench.methods.moco import MoCo

        real_step, steps = MoCo.training_step, [0]

        def stopping_step(self, batch):
            steps[0] += 1
            if steps[0] > stop_at:
                raise RuntimeError("preempted")
            return real_step(self, batch)

        MoCo.training_step = stopping_step
        assert [o.status for o in runner.run_grid(spec, say=lambda _: None)] == ["failed"]
        MoCo.training_step = real_step
    said: list[str] = []
    outcomes = runner.run_grid(spec, say=said.append)
    if rank == 0:
        (Path(root) / out / "said.txt").write_text("\n".join(said))
    assert all(o.status == "ran" for o in outcomes), outcomes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    n = 48 + 16
    x = rng.normal(size=(n, 3, 12, 25, 1)).astype(np.float32)
    np.savez(root / "tiny.npz", x=x, y=np.arange(n) % 3, split_all=np.arange(n) < 48)
    mp.start_processes(_worker, args=(str(root), _free_port()), nprocs=WORLD, start_method="spawn", join=True)
    return root


@pytest.mark.parametrize("method", METHODS)
def test_ranks_hold_identical_queues_prototypes_and_weights(ddp_run, method):
    states = [torch.load(ddp_run / "out" / f"{method}_rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        a, b = states[0][key], states[1][key]
        if key.endswith("_extra_state"):  # the hallucination generator: the same draws on every rank
            a, b = a["generator"], b["generator"]
        assert torch.equal(a, b), key
    assert int(states[0]["queue.filled"]) == 2 * 6 * 8  # 2 epochs x 6 global batches x 8 keys: the global batch
    if method == "halp":
        assert bool(states[0]["prototype_states.joint.ready"])


def test_rank_zero_alone_writes_one_row_and_one_checkpoint(ddp_run):
    rows = [json.loads(line) for line in (ddp_run / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(row["method"] for row in rows) == sorted(METHODS)
    for row in rows:
        pre = row["pretrain"]
        assert (pre["processes"], pre["batch_per_process"], pre["effective_batch"]) == (2, 4, 8)
        assert all(math.isfinite(v) for v in pre["final_loss"].values()) and "loss" in pre["final_loss"]
    for method in METHODS:
        (run_dir,) = (ddp_run / "out" / "runs").glob(f"{method}_*")
        assert [p.name for p in run_dir.glob("checkpoint*")] == ["checkpoint.pt"]
        state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
        assert state["epoch"] == 2 and len(state["rng_ranks"]) == WORLD


def test_rank_zero_alone_logs(ddp_run):
    if "tensorboard" not in LOGGERS:
        pytest.skip("the tensorboard extra is not installed")
    for method in METHODS:
        (run_dir,) = (ddp_run / "out" / "runs").glob(f"{method}_*")
        for log_dir in (run_dir, *(p for p in run_dir.iterdir() if p.is_dir())):  # the pretraining and its knn cell
            assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1, log_dir  # one process wrote it


def test_a_stopped_run_resumes_bit_for_bit(ddp_run):
    """Stopped on every rank after step 8 of 12 (mid-epoch 2) and rerun: the same weights, queue and
    prototypes as the uninterrupted run (each rank's generators come back from the checkpoint)."""
    mp.start_processes(_worker, args=(str(ddp_run), _free_port(), "resumed", ("halp",), 8), nprocs=WORLD, start_method="spawn", join=True)
    (straight,) = (ddp_run / "out" / "runs").glob("halp_*")
    (resumed,) = (ddp_run / "resumed" / "runs").glob("halp_*")
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (straight, resumed))
    assert "resuming halp from epoch 1 of 2, iteration 2" in (ddp_run / "resumed" / "said.txt").read_text()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key
