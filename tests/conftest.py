"""Shared fixtures: tiny configs and tiny data so every test runs in seconds on a CPU."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from halp_bench.common.cpu_share import share_cpus
from halp_bench.config import RunConfig, has_key, make_config, make_configs
from halp_bench.datasets.base import SkeletonData
from halp_bench.datasets.quality.scan import ENV_CACHE
from halp_bench.registry import load_plugins
from halp_bench.skeleton import NTU25, DataSpec

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

TINY_OVERRIDES = [
    "encoder.hidden_size=16",
    "encoder.num_layers=1",
    "method.proj_hidden=32",
    "method.proj_dim=16",
    "data.frames=8",
    "augment.min_crop_frames=8",
    "method.queue_size=64",
    "method.cmd_topk=16",
    "method.prototype_queue=32",
    "method.num_prototypes=4",
    "method.num_positives=8",
    "method.start_epoch=0",
    "method.cross_epoch=0",
    "pretrain.epochs=2",
    "pretrain.batch_size=8",
    "pretrain.milestones=1",
    "pretrain.warmup_epochs=0",
    "linear.epochs=2",
    "linear.batch_size=8",
    "linear.milestones=1",
    "transfer.epochs=1",
    "transfer.batch_size=8",
    "transfer.milestones=1",
    "eval.batch_size=16",
    "checkpoint_every=1",
    "device=cpu",
]


# One torch thread for the test process and the CLI processes it starts: counted as fixed in the
# machine's CPU share (common/cpu_share.py), so a run beside the suite takes the other cores, and
# results of subprocesses do not depend on what else runs.
TEST_THREADS = 1
os.environ["OMP_NUM_THREADS"] = str(TEST_THREADS)


@pytest.fixture(autouse=True, scope="session")
def _plugins() -> Iterator[None]:
    load_plugins()
    with share_cpus(TEST_THREADS):
        yield


# Data scans are cached in a directory of this session, never in the user's cache. Set on import,
# before any test module copies the environment for the CLI processes it starts; a process the
# tests start that imports this file again keeps the session's directory.
SCAN_CACHE_PREFIX = os.path.join(tempfile.gettempdir(), "halp-bench-test-scans-")
OWN_SCAN_CACHE = not os.environ.get(ENV_CACHE, "").startswith(SCAN_CACHE_PREFIX)
if OWN_SCAN_CACHE:
    os.environ[ENV_CACHE] = tempfile.mkdtemp(prefix=os.path.basename(SCAN_CACHE_PREFIX))


@pytest.fixture(autouse=True, scope="session")
def _scan_cache() -> Iterator[None]:
    yield
    if OWN_SCAN_CACHE:
        shutil.rmtree(os.environ[ENV_CACHE], ignore_errors=True)


@pytest.fixture
def one_thread():
    """Single-threaded torch: steadier in-process runs on a shared 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_overrides(*methods: str, encoder: str | None = None) -> list[str]:
    """TINY_OVERRIDES less the keys none of `methods` has, with `encoder` (default: each method's
    own, e.g. aimclr's stgcn): a --set key must fit one of a run's methods. A named encoder is
    named in the result."""
    named = [f"encoder.name={encoder}"] if encoder else []
    configs = make_configs("cpu", named, list(methods)).values()
    kept = [item for item in TINY_OVERRIDES if any(has_key(cfg, item.split("=")[0]) for cfg in configs)]
    return [*named, *kept]


def tiny_config(method: str, *more: str, encoder: str | None = None) -> RunConfig:
    """`method`'s configuration at the tiny size (with `encoder`), with `more` overrides."""
    return make_config("cpu", [*tiny_overrides(method, encoder=encoder), *more], method=method)


NTU_SPEC = DataSpec(channels=3, frames=8, joints=25, persons=2, layout=NTU25)  # what the tiny configs' encoders see


def random_skeletons(n: int = 24, t: int = 12, v: int = 25, m: int = 2, classes: int = 3, seed: int = 0) -> SkeletonData:
    """Unstructured random data with variable lengths (for mechanics, not learning)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, t, v, m)).astype(np.float32)
    lengths = rng.integers(t // 2, t + 1, size=n)
    for i, length in enumerate(lengths):
        x[i, :, length:] = 0
    labels = np.arange(n) % classes
    mask = np.zeros(n, dtype=bool)
    mask[: n * 2 // 3] = True
    return SkeletonData("random", x, lengths, labels, classes, "ntu25" if v == 25 else "", {"all": mask}, "all")


# Kinect v1's 20 joints as NTU-25 ones: NTU's neck (2) is not one; Kinect's shoulder centre is NTU's spine shoulder (20)
KINECT_FROM_NTU = [0, 1, 20, 3, *range(4, 20)]


def sensor_skeletons() -> tuple[np.ndarray, np.ndarray]:
    """Four synthetic samples as a sensor gives them (camera coordinates, dropped joints), two of
    them two-person: ((4, 3, T, 25, 2), lengths)."""
    from halp_bench.datasets.synthetic import SyntheticSpec, load_synthetic

    data = load_synthetic(SyntheticSpec(num_samples=200), 0)
    one = np.flatnonzero(~data.data[..., 1].any(axis=(1, 2, 3)))[:2]
    two = np.flatnonzero(data.data[..., 1].any(axis=(1, 2, 3)))[:2]
    chosen = np.concatenate([one, two])
    return np.round(np.asarray(data.data[chosen]), 4), data.lengths[chosen]


PKU_VIDEOS = ("A01N01-L", "A01N02-M", "A02N01-R", "A03N01-M")


def write_pku(raw: Path, x: np.ndarray, lengths: np.ndarray) -> None:
    """`x`'s (up to 4) samples as official PKU-MMD II files, one video and one whole-video action
    each; the first two videos train in both splits."""
    (raw / "skeleton").mkdir(parents=True)
    (raw / "label").mkdir()
    for video, sample, length in zip(PKU_VIDEOS, x, lengths):
        frames = sample[:, :length].transpose(1, 3, 2, 0).reshape(length, 150)  # (T, M, V, C) per line
        (raw / "skeleton" / f"{video}.txt").write_text("\n".join(" ".join(f"{v:.4f}" for v in row) for row in frames) + "\n")
        (raw / "label" / f"{video}.txt").write_text(f"1,0,{length},1\n")
    for file in ("cross_subject_v2.txt", "cross_view_v2.txt"):
        (raw / file).write_text(f"Training videos: \n{', '.join(PKU_VIDEOS[:2])}\nValidataion videos: \n{', '.join(PKU_VIDEOS[2:])}\n")
