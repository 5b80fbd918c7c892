"""Plugins defined outside the package (examples/plugin) are found through the entry points and
run through every protocol with no edit under halp_bench/: a MoCo variant, a queue-free BYOL with
its own settings and optimiser defaults, and a temporal-convolution encoder of its own."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"
MODULES = ("halp_bench_symmetric", "halp_bench_byol", "halp_bench_tcn")


def _fake_install(site: Path) -> None:
    """What `pip install examples/plugin` leaves behind: the modules and their entry-point metadata."""
    for module in MODULES:
        (site / f"{module}.py").write_text((EXAMPLE / f"{module}.py").read_text())
    dist = site / "halp_bench_example_plugins-0.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halp-bench-example-plugins\nVersion: 0.2.0\n")
    (dist / "entry_points.txt").write_text(
        "[halp_bench.methods]\nmoco_symmetric = halp_bench_symmetric\nbyol = halp_bench_byol\n\n[halp_bench.encoders]\ntcn = halp_bench_tcn\n"
    )


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "200"}


def test_external_plugins_are_listed_with_their_settings(tmp_path):
    _fake_install(tmp_path)
    listed = subprocess.run([sys.executable, "-m", "halp_bench.cli", "list"], capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert listed.returncode == 0, listed.stderr
    for text in (
        "moco_symmetric",
        "byol",
        "base_momentum=0.996",
        "tcn",
        "kernel_size=9",
        "family plugins (external plugins) · base moco · encoder bigru (official: bigru_official) · runs: bare run",
    ):
        assert text in listed.stdout, text


RUN = """
import sys, json
sys.path.insert(0, {tests!r})
from conftest import random_skeletons, tiny_overrides
from halp_bench.registry import DATASETS, load_plugins
from halp_bench.results.row import read_rows
from halp_bench.orchestration.grid import RunSpec, run_grid
load_plugins()
DATASETS.add("tiny-src", lambda cfg: random_skeletons(n=32, t=12, classes=3, seed=0))
DATASETS.add("tiny-tgt", lambda cfg: random_skeletons(n=32, t=12, classes=4, seed=1))
methods = ["byol", "moco_symmetric"]
overrides = [*tiny_overrides(*methods, encoder="tcn"), "encoder.channels=16", "encoder.layers=2", "encoder.kernel_size=3",
             "method.mlp_hidden=32", "method.proj_dim=16", "pretrain.epochs=3"]
out = run_grid(RunSpec(methods=methods, dataset="tiny-tgt", transfer_from="tiny-src", protocols=["knn", "linear", "transfer"],
                       overrides=overrides, out={out!r}, show_progress=False), say=lambda m: None)
assert [o.status for o in out] == ["ran"] * 6, out
print(json.dumps([[r.method, r.protocol, r.metrics["top1"], r.settings["encoder"], r.settings["pretrain_optimizer"],
                   r.config["pretrain"]["lr"], r.pretrain.final_loss] for r in read_rows({results!r})]))
"""


def test_external_method_and_encoder_run_through_every_protocol(tmp_path):
    import json

    _fake_install(tmp_path)
    script = RUN.format(tests=str(Path(__file__).parent), out=str(tmp_path / "out"), results=str(tmp_path / "out" / "results.jsonl"))
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(ran.stdout.strip().splitlines()[-1])
    assert {(method, protocol) for method, protocol, *_ in rows} == {(m, p) for m in ("byol", "moco_symmetric") for p in ("knn", "linear", "transfer")}
    for method, _, top1, encoder, optimiser, lr, final_loss in rows:
        assert 0.0 <= top1 <= 100.0 and all(math.isfinite(v) for v in final_loss.values())
        assert encoder == "tcn 2x16 k3"  # the plugin encoder describes itself in the tables
        if method == "byol":  # its own optimiser defaults; MoCo's stay SGD
            assert (optimiser, lr) == ("adamw cosine", 1e-3) and "regression" in final_loss
        else:
            assert (optimiser, lr) == ("sgd multistep", 0.05)


UNINSTALLED_TABLE = """
import sys


class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is not importable in this process")


sys.meta_path.insert(0, BlockTorch())
from halp_bench.cli import main

sys.argv = ["halp-bench", "table", "--results", {results!r}, "--out", {out!r}, "--format", "md"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
loaded = [name for name, module in sys.modules.items() if module is not None
          and name.split(".")[0] in ("torch", "halp_bench_symmetric", "halp_bench_tcn") or name.startswith("halp_bench.methods")]
print("LOADED", loaded)
"""


def test_a_store_of_an_uninstalled_plugin_tabulates_without_torch(tmp_path):
    """Rows carry what tables need: after the plugin is uninstalled, and with torch unimportable,
    `halp-bench table` orders, labels and pairs them (moco_symmetric against moco, same key)."""
    import shutil

    site = tmp_path / "site"
    site.mkdir()
    _fake_install(site)
    script = (
        RUN.replace('methods = ["byol", "moco_symmetric"]', 'methods = ["moco", "moco_symmetric"]')
        .replace('"method.mlp_hidden=32", ', "")
        .format(tests=str(Path(__file__).parent), out=str(tmp_path / "out"), results=str(tmp_path / "out" / "results.jsonl"))
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(site), timeout=600)
    assert ran.returncode == 0, ran.stderr
    shutil.rmtree(site)  # uninstalled: neither the methods nor the encoder can be imported any more
    table = UNINSTALLED_TABLE.format(results=str(tmp_path / "out" / "results.jsonl"), out=str(tmp_path / "tables"))
    shown = subprocess.run([sys.executable, "-c", table], capture_output=True, text=True, env=_env(site), timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "LOADED []" in shown.stdout  # no torch, no plugin, no built-in method imported
    assert "| moco_symmetric − moco |" in shown.stdout  # paired: same encoder (tcn), data and protocol settings
    linear = shown.stdout.split("**Table 1")[1].split("**Table")[0]
    assert linear.index("| moco ") < linear.index("| moco_symmetric ")  # the paper's row first, the plugin's after it
    assert "encoder tcn 2x16 k3" in linear
