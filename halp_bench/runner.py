"""The run grid: methods x seeds, each pretrained once, then every requested protocol.

Cells already in the results store (same method, dataset, split, protocol, preset, seed and
settings) are skipped; an unfinished pretraining resumes from its checkpoint; a failing cell is
reported in the summary and does not stop the others.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import halp_bench
from halp_bench.config import RunConfig, flat_items, make_config
from halp_bench.datasets.catalog import load_dataset
from halp_bench.engine.device import device_name, resolve_device, seed_everything
from halp_bench.engine.pretrain import PretrainResult, pretrain, pretrain_signature
from halp_bench.errors import HalpBenchError
from halp_bench.methods.base import DataInfo, create_method
from halp_bench.protocols.base import ProtocolContext
from halp_bench.registry import METHODS, PROTOCOLS, load_plugins
from halp_bench.results.store import RESULTS_FILE, append_result, cell_key, load_results
from halp_bench.skeleton import chain_layout, get_layout


@dataclass
class RunSpec:
    """One `halp-bench run`: the grid axes and where results go."""

    methods: list[str] | None = None  # None: every registered method
    dataset: str = "synthetic"
    split: str | None = None  # None: the dataset's default split
    protocols: list[str] | None = None  # None: every registered protocol
    preset: str = "cpu"
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    out: Path = Path("results")
    force: bool = False
    show_progress: bool = True


@dataclass
class CellOutcome:
    method: str
    seed: int
    protocol: str
    status: str  # "ran", "skipped" or "failed"
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def config_id(cfg: RunConfig) -> str:
    """A short hash of every setting that can change a number (not the device)."""
    settings = {k: v for k, v in flat_items(cfg).items() if k not in ("device", "checkpoint_every")}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=list).encode()).hexdigest()[:10]


def safe_name(text: str) -> str:
    """A file-name-safe form of a dataset or split name (a dataset may be a path): never a path."""
    stem = Path(text).name.split(".")[0] if ("/" in text or "\\" in text or "." in text) else text
    clean = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem)[:40] or "data"
    if clean != text:
        clean += "-" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return clean


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(halp_bench.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    return {"halp_bench": halp_bench.__version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_grid(spec: RunSpec, say: Callable[[str], None] = print) -> list[CellOutcome]:
    """Run every (method, seed, protocol) cell of `spec`; return what ran, was skipped or failed."""
    load_plugins()
    methods = spec.methods or METHODS.names()
    protocols = spec.protocols or PROTOCOLS.names()
    for name in methods:
        METHODS.get(name)  # unknown names fail before any work starts
    for name in protocols:
        PROTOCOLS.get(name)
    base_cfg = make_config(spec.preset, [*spec.overrides, f"data.dataset={spec.dataset}", f"device={spec.device}"])
    device = resolve_device(base_cfg.device)
    data = load_dataset(base_cfg.data)
    split = spec.split or base_cfg.data.split or data.default_split
    train, test = data.split(split)
    base_cfg.data.split = split
    layout = get_layout(data.layout) if data.layout else chain_layout(data.shape[3])
    info = DataInfo(in_channels=data.in_channels, num_joints=data.shape[3], layout=layout)
    results_path = Path(spec.out) / RESULTS_FILE
    done = {cell_key(row) for row in load_results(results_path)}
    outcomes: list[CellOutcome] = []
    for seed in spec.seeds:
        cfg = make_config(spec.preset, [*spec.overrides, f"data.dataset={spec.dataset}", f"data.split={split}", f"device={spec.device}", f"seed={seed}"])
        cid = config_id(cfg)
        for method_name in methods:
            keys = {p: (method_name, spec.dataset, split, p, spec.preset, seed, cid) for p in protocols}
            todo = [p for p in protocols if spec.force or keys[p] not in done]
            for p in protocols:
                if p not in todo:
                    outcomes.append(CellOutcome(method_name, seed, p, "skipped", "already in the results store"))
            if not todo:
                continue
            run_dir = Path(spec.out) / "runs" / f"{method_name}_{safe_name(spec.dataset)}_{safe_name(split)}_{spec.preset}_seed{seed}_{cid}"
            try:
                seed_everything(seed)
                method = create_method(method_name, cfg, info)
                if method.pretrains:
                    if spec.force:
                        (run_dir / "checkpoint.pt").unlink(missing_ok=True)
                        (run_dir / "log.csv").unlink(missing_ok=True)
                    started = time.perf_counter()
                    result = pretrain(method_name, method, train, cfg, device, run_dir, show_progress=spec.show_progress, say=say)
                    if result.resumed_from < cfg.pretrain.epochs:
                        say(f"pretrained {method_name} in {time.perf_counter() - started:.1f}s ({result.time_per_epoch:.2f}s/epoch)")
                else:
                    result = PretrainResult(epochs=0)
                    method.to(device)
            except HalpBenchError:
                raise
            except Exception as exc:  # one broken cell must not cost the others
                detail = f"pretraining failed: {type(exc).__name__}: {exc}"
                (run_dir / "error.log").parent.mkdir(parents=True, exist_ok=True)
                (run_dir / "error.log").write_text(traceback.format_exc())
                outcomes.extend(CellOutcome(method_name, seed, p, "failed", detail) for p in todo)
                continue
            ctx = ProtocolContext(cfg=cfg, device=device, show_progress=spec.show_progress, say=say)
            for protocol in todo:
                started_at = _now()
                t0 = time.perf_counter()
                try:
                    seed_everything(seed)
                    metrics = PROTOCOLS.get(protocol)(method.encoder_for_eval(), train, test, ctx)
                except HalpBenchError:
                    raise
                except Exception as exc:
                    outcomes.append(CellOutcome(method_name, seed, protocol, "failed", f"{type(exc).__name__}: {exc}"))
                    continue
                row = {
                    "method": method_name,
                    "dataset": spec.dataset,
                    "split": split,
                    "protocol": protocol,
                    "preset": spec.preset,
                    "seed": seed,
                    "config_id": cid,
                    "metrics": metrics,
                    "report": cfg.eval.report,
                    "protocol_seconds": round(time.perf_counter() - t0, 3),
                    "pretrain": {
                        "epochs": result.epochs,
                        "time_per_epoch_s": result.time_per_epoch,
                        "peak_memory_mb": result.peak_mb,
                        "peak_memory_increase_mb": result.increase_mb,
                        "final_loss": result.losses[-1] if result.losses else {},
                    },
                    "settings": settings_summary(cfg),
                    "config": cfg.to_dict(),
                    "pretrain_config": pretrain_signature(cfg),
                    "git_commit": git_commit(),
                    "versions": versions(),
                    "device": device_name(device),
                    "run_dir": str(run_dir),
                    "started": started_at,
                    "finished": _now(),
                }
                append_result(results_path, row)
                outcomes.append(CellOutcome(method_name, seed, protocol, "ran", metrics=metrics))
    return outcomes


def settings_summary(cfg: RunConfig) -> dict[str, object]:
    """The settings that decide whether two numbers can be compared, shown beside every table."""
    e = cfg.encoder
    return {
        "encoder": f"{e.name} {e.num_layers}x{e.hidden_size}",
        "frames": cfg.data.frames,
        "pretrain_epochs": cfg.pretrain.epochs,
        "linear_epochs": cfg.linear.epochs,
        "knn_k": cfg.eval.knn_k,
        "stream": cfg.eval.stream,
        "report": cfg.eval.report,
        "queue": cfg.method.queue_size,
    }
