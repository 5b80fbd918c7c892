"""A method defined outside the package is found through the `halp_bench.methods` entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


def _fake_install(site: Path) -> None:
    """What `pip install examples/plugin` leaves behind: the module and its entry-point metadata."""
    (site / "halp_bench_symmetric.py").write_text((EXAMPLE / "halp_bench_symmetric.py").read_text())
    dist = site / "halp_bench_symmetric-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halp-bench-symmetric\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[halp_bench.methods]\nmoco_symmetric = halp_bench_symmetric\n")


def test_external_method_is_listed_and_trains(tmp_path):
    _fake_install(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run([sys.executable, "-m", "halp_bench.cli", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0 and "moco_symmetric" in listed.stdout
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from conftest import TINY_OVERRIDES, random_skeletons\n"
        "from halp_bench.registry import DATASETS, load_plugins\n"
        "from halp_bench.runner import RunSpec, run_grid\n"
        "load_plugins()\n"
        "DATASETS.add('tiny', lambda cfg: random_skeletons())\n"
        "out = run_grid(RunSpec(methods=['moco_symmetric'], dataset='tiny', protocols=['knn'], overrides=TINY_OVERRIDES,"
        " out=%r, show_progress=False), say=lambda m: None)\n"
        "assert [o.status for o in out] == ['ran'], out\n"
    ) % (str(Path(__file__).parent), str(tmp_path / "out"))
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr
