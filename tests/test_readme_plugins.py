"""docs/extending.md's "Adding a method" and "Adding an encoder" code, run exactly as written: the method and
the encoder register, `halp-bench list` shows them, and they pretrain and evaluate together."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

EXTENDING = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def readme_block(heading: str) -> str:
    """The first ```python block of the section `heading` of docs/extending.md."""
    text = EXTENDING.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (code, *_) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


RUN = """
import json, sys
sys.path.insert(0, {tests!r})
sys.path.insert(0, {site!r})
import readme_method, readme_encoder
from conftest import random_skeletons, tiny_overrides
from halp_bench.registry import DATASETS, load_plugins
from halp_bench.results.row import read_rows
from halp_bench.orchestration.grid import RunSpec, run_grid
load_plugins()
DATASETS.add("tiny", lambda cfg: random_skeletons(n=32, t=12, classes=3))
overrides = [*tiny_overrides("simsiam", encoder="frame_mlp"), "method.hidden=16", "method.dim=16", "encoder.width=16"]
out = run_grid(RunSpec(methods=["simsiam"], dataset="tiny", protocols=["knn", "linear"], overrides=overrides, out={out!r},
                       show_progress=False), say=lambda m: None)
assert [o.status for o in out] == ["ran", "ran"], out
print(json.dumps([[r.protocol, r.metrics["top1"], r.settings["encoder"], r.settings["pretrain_optimizer"], r.config["pretrain"]["lr"]]
                  for r in read_rows({results!r})]))
"""


def test_readme_method_and_encoder_register_list_and_train(tmp_path):
    (tmp_path / "readme_method.py").write_text(readme_block("Adding a method"))
    (tmp_path / "readme_encoder.py").write_text(readme_block("Adding an encoder"))
    script = RUN.format(tests=str(Path(__file__).parent), site=str(tmp_path), out=str(tmp_path / "out"), results=str(tmp_path / "out" / "results.jsonl"))
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(ran.stdout.strip().splitlines()[-1])
    assert sorted(r[0] for r in rows) == ["knn", "linear"]
    for _, top1, encoder, optimiser, lr in rows:
        assert 0.0 <= top1 <= 100.0
        assert encoder == "frame_mlp 16" and optimiser == "sgd cosine" and lr == 0.05  # its own run defaults
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import readme_method, "
            "readme_encoder; sys.argv = ['halp-bench', 'list']; from halp_bench.cli import main; main()",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert listed.returncode == 0, listed.stderr
    assert "simsiam" in listed.stdout and "hidden=2048" in listed.stdout and "frame_mlp" in listed.stdout and "width=512" in listed.stdout
