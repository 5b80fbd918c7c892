"""The CPU share: halp-bench processes on one machine split its cores instead of fighting for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from halp_bench.common import cpu_share
from halp_bench.common.cpu_share import CpuShare, share_cpus
from halp_bench.errors import ConfigError

PEER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from halp_bench.common.cpu_share import CpuShare
    share = CpuShare(Path(sys.argv[1]), 4)
    share.join(None if sys.argv[2] == "adaptive" else int(sys.argv[2]))
    print("joined", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def peers(tmp_path):
    """Start processes that announce themselves in tmp_path, as other halp-bench runs would."""
    started: list[subprocess.Popen] = []

    def start(kind: str = "adaptive") -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", PEER, str(tmp_path), kind], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "joined"
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def outside_the_suite_share(tmp_path, monkeypatch):
    """share_cpus as in a fresh process (the suite's own share, conftest.py, is set aside), announcing
    itself in tmp_path on a 4-core machine."""
    monkeypatch.setattr(cpu_share, "_state", cpu_share._State())
    monkeypatch.setenv(cpu_share.DIRECTORY_VARIABLE, str(tmp_path))
    monkeypatch.setattr(cpu_share, "machine_cores", lambda: 4)


def test_a_process_alone_keeps_every_core(tmp_path):
    share = CpuShare(tmp_path, 4)
    share.join(None)
    try:
        assert share.peers() == [] and share.fair_threads() == 4
    finally:
        share.leave()
    assert list(tmp_path.iterdir()) == []


def test_live_processes_split_the_cores_and_fixed_counts_are_subtracted(tmp_path, peers):
    share = CpuShare(tmp_path, 4)
    share.join(None)
    try:
        peers("adaptive")
        assert share.peers() == [None] and share.fair_threads() == 2
        peers("3")
        assert sorted(share.peers(), key=str) == [3, None] and share.fair_threads() == 1  # (4 - 3) // 2, at least 1
    finally:
        share.leave()


def test_a_killed_process_stops_counting_and_its_file_is_removed(tmp_path, peers):
    share = CpuShare(tmp_path, 2)
    share.join(None)
    try:
        peer = peers("adaptive")
        assert share.fair_threads() == 1
        peer.send_signal(signal.SIGKILL)
        peer.wait()
        assert share.fair_threads() == 2
        assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())]
    finally:
        share.leave()


def test_the_running_process_takes_its_share_when_a_peer_arrives_and_gives_it_back(peers, monkeypatch, outside_the_suite_share):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # conftest fixes one thread for the suite
    before = torch.get_num_threads()
    with share_cpus():
        assert torch.get_num_threads() == 4
        peer = peers("adaptive")
        cpu_share.rebalance(force=True)
        assert torch.get_num_threads() == 2
        peer.kill()
        peer.wait()
        cpu_share.rebalance(force=True)
        assert torch.get_num_threads() == 4
    assert torch.get_num_threads() == before


def test_a_chosen_thread_count_is_kept_and_counted_against_the_others(tmp_path, peers, monkeypatch, outside_the_suite_share):
    before = torch.get_num_threads()
    with share_cpus(3):
        peers("adaptive")
        cpu_share.rebalance(force=True)
        assert torch.get_num_threads() == 3
        assert CpuShare(tmp_path, 4, name="newcomer").fair_threads() == 1  # (4 cores - our 3) // 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with share_cpus():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_sharing_can_be_switched_off_and_a_bad_count_is_refused(tmp_path, monkeypatch, outside_the_suite_share):
    monkeypatch.setenv(cpu_share.SWITCH_VARIABLE, "0")
    with share_cpus(2):
        assert torch.get_num_threads() == 2
        assert not tmp_path.exists() or list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="threads 0"):
        with share_cpus(0):
            pass
