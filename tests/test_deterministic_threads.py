"""--deterministic keeps one CPU thread count for the whole run, whatever other halp-bench processes
come and go (simulated through the CPU-share directory); a resumed run takes the count its
checkpoint was made with; the count is recorded in every row."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from halp_bench.common import cpu_share
from halp_bench.common.cpu_share import CpuShare
from halp_bench.methods.moco import MoCo
from halp_bench.orchestration.grid import RunSpec, run_grid
from halp_bench.results.row import read_rows

TRAIN, BATCH, EPOCHS = 24, 4, 2
KILL_AT = 8  # the training step at which the first run dies (after the checkpoint of step 7)
TRAINING_STEP = MoCo.training_step


class Killed(BaseException):
    """Stands for a SIGKILL: nothing in the run catches it."""


@pytest.fixture
def share_dir(tmp_path, monkeypatch) -> Path:
    """A fresh process's CPU share on a pretend 4-core machine, checked at every batch, with no
    thread count fixed by the environment."""
    directory = tmp_path / "share"
    monkeypatch.setattr(cpu_share, "_state", cpu_share._State())
    monkeypatch.setattr(cpu_share, "machine_cores", lambda: 4)
    monkeypatch.setattr(cpu_share, "CHECK_INTERVAL_S", 0.0)
    monkeypatch.setenv(cpu_share.DIRECTORY_VARIABLE, str(directory))
    for name in cpu_share.USER_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    yield directory
    torch.set_num_threads(threads)


@pytest.fixture
def dataset(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    n = TRAIN + 12
    path = tmp_path / "tiny.npz"
    np.savez(path, x=rng.normal(size=(n, 3, 12, 25, 1)).astype(np.float32), y=np.arange(n) % 3, split_all=np.arange(n) < TRAIN)
    return path


class Neighbours:
    """Other halp-bench processes, as the share directory shows them: they start and stop at fixed
    training steps of the run under test, which records its thread count at every step."""

    # step -> (join or leave, which process, its threads)
    SCRIPT: ClassVar[dict[int, tuple[str, str, int | None]]] = {
        2: ("join", "a", None),
        4: ("join", "b", 1),
        6: ("leave", "a", None),
        10: ("join", "c", None),
        13: ("leave", "b", None),
    }

    def __init__(self, directory: Path, monkeypatch, kill_at: int | None = None):
        self.directory, self.kill_at, self.step, self.seen = directory, kill_at, 0, []
        self.live: dict[str, CpuShare] = {}

        def step(method, batch):
            self.step += 1
            event = self.SCRIPT.get(self.step)
            if event:
                self.act(*event)
            if self.step == self.kill_at:
                raise Killed
            self.seen.append(torch.get_num_threads())
            return TRAINING_STEP(method, batch)

        monkeypatch.setattr(MoCo, "training_step", step)

    def act(self, what: str, name: str, fixed: int | None) -> None:
        if what == "join":
            self.live[name] = CpuShare(self.directory, 4, name=name)
            self.live[name].join(fixed)
        else:
            self.live.pop(name).leave()

    def close(self) -> None:
        for share in self.live.values():
            share.leave()


def spec(dataset: Path, out: Path, threads: int | None, deterministic: bool = True) -> RunSpec:
    overrides = [*tiny_overrides("moco"), f"pretrain.batch_size={BATCH}", f"pretrain.epochs={EPOCHS}", "checkpoint_every_iters=1"]
    return RunSpec(
        methods=["moco"],
        dataset=str(dataset),
        protocols=["knn", "linear"],
        preset="cpu",
        overrides=overrides,
        out=out,
        deterministic=deterministic,
        threads=threads,
        show_progress=False,
    )


def run(dataset: Path, out: Path, share_dir: Path, monkeypatch, threads: int | None, deterministic: bool = True, kill_at: int | None = None) -> list[int]:
    """Run (or resume) the grid among the scripted neighbours; the thread counts seen per step."""
    neighbours = Neighbours(share_dir, monkeypatch, kill_at)
    try:
        run_grid(spec(dataset, out, threads, deterministic), say=lambda _: None)
    except Killed:
        pass
    finally:
        neighbours.close()
    return neighbours.seen


def test_the_neighbours_do_move_an_adaptive_run(dataset, tmp_path, share_dir, monkeypatch):
    """The control: without --deterministic the same neighbours change the thread count mid-run."""
    seen = run(dataset, tmp_path / "adaptive", share_dir, monkeypatch, threads=None, deterministic=False)
    assert len(set(seen)) > 1, seen


def test_a_deterministic_run_resumed_among_other_processes_ends_as_the_uninterrupted_one(dataset, tmp_path, share_dir, monkeypatch):
    torch.set_num_threads(2)
    whole = run(dataset, tmp_path / "whole", share_dir, monkeypatch, threads=None)
    assert set(whole) == {2} and len(whole) == EPOCHS * TRAIN // BATCH  # pinned while the neighbours came and went

    cut = run(dataset, tmp_path / "cut", share_dir, monkeypatch, threads=None, kill_at=KILL_AT)
    assert set(cut) == {2} and len(cut) == KILL_AT - 1
    assert not (tmp_path / "cut" / "results.jsonl").exists()
    torch.set_num_threads(1)  # the resumed process would pin 1 thread: the checkpoint's 2 win
    resumed = run(dataset, tmp_path / "cut", share_dir, monkeypatch, threads=None)
    assert set(resumed) == {2} and len(resumed) == len(whole) - len(cut)

    expected = {row.protocol: row for row in read_rows(tmp_path / "whole" / "results.jsonl")}
    got = {row.protocol: row for row in read_rows(tmp_path / "cut" / "results.jsonl")}
    assert set(got) == set(expected) == {"knn", "linear"}
    for protocol, row in got.items():
        assert row.pretrain.resumed_from == 1  # it did resume (mid-epoch 1, after 7 of 12 steps)
        assert row.metrics == expected[protocol].metrics
        assert row.pretrain.final_loss == expected[protocol].pretrain.final_loss
        assert row.threads == expected[protocol].threads == 2 and row.deterministic
