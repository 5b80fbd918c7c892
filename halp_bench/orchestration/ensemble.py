"""`halp-bench ensemble`: the field's three-stream rows from separately pretrained streams.

SkeletonCLR and AimCLR pretrain one stream per model (`method.stream`); their "3s" rows fuse the
class scores of three linear probes, one per stream's pretraining, with fixed weights (AimCLR's
`ensemble_ntu_cs.py`: 0.6 joint + 0.6 bone + 0.4 motion; equal weights otherwise). This command
finds each stream's stored pretraining (the run directory `halp-bench run --set method.stream=S`
made, same preset, settings and seed), trains the probe on it with the method's own protocol,
keeps each stream's test scores (`<out>/ensembles/<cell>/<stream>.npz`) and stores one row per
seed: the fused top-1, labelled "3s" in the tables, with each stream's own top-1 beside it.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.common.cpu_share import share_cpus
from halp_bench.config import make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.declarations import row_table_fields
from halp_bench.engine.device import deterministic_mode, device_name, resolve_device, seed_everything
from halp_bench.engine.pretrain import CHECKPOINT_FILE
from halp_bench.errors import ConfigError
from halp_bench.identity import short_hash
from halp_bench.orchestration.cells import CellOutcome, now
from halp_bench.orchestration.grid import RunSpec, run_dir_for
from halp_bench.orchestration.provenance import git_commit, settings_summary, versions
from halp_bench.orchestration.stages import check_and_fingerprint, method_pipeline
from halp_bench.overrides import Override
from halp_bench.protocols.base import ProtocolContext
from halp_bench.protocols.classifier import train_classifier
from halp_bench.registry import METHODS, load_plugins
from halp_bench.results.row import ResultRow
from halp_bench.results.store import RESULTS_FILE, append_result, ensure_output_dir
from halp_bench.weights import method_from_checkpoint, read_weights

STREAMS = ("joint", "motion", "bone")
# named weight sets: AimCLR's ensemble script, and the plain mean
ENSEMBLE_WEIGHTS: dict[str, dict[str, float]] = {"aimclr": {"joint": 0.6, "motion": 0.4, "bone": 0.6}, "equal": {"joint": 1.0, "motion": 1.0, "bone": 1.0}}


@dataclass
class EnsembleSpec:
    method: str
    dataset: str = "synthetic"
    split: str | None = None
    weights: str = "aimclr"  # a name of ENSEMBLE_WEIGHTS, or "j,m,b" numbers
    seeds: list[int] = field(default_factory=lambda: [0])
    preset: str = "cpu"
    overrides: list[str] = field(default_factory=list)
    device: str = "auto"
    out: Path = Path("results")
    show_progress: bool = True
    deterministic: bool = False
    threads: int | None = None


def parse_weights(text: str) -> tuple[str, dict[str, float]]:
    """(label, stream -> weight) of `--weights`: a preset name or three numbers (joint, motion, bone)."""
    if text in ENSEMBLE_WEIGHTS:
        return text, ENSEMBLE_WEIGHTS[text]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != len(STREAMS) or not all(np.isfinite(values)):
        raise ConfigError(f"--weights {text}: expected one of {', '.join(ENSEMBLE_WEIGHTS)} or three numbers for joint,motion,bone (e.g. 0.6,0.4,0.6)")
    return "/".join(f"{v:g}" for v in values), dict(zip(STREAMS, values))


def fuse(scores: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted sum of the streams' class scores (AimCLR: of the probes' logits, not softmaxed)."""
    return sum(weights[stream] * scores[stream] for stream in weights)


def top1(scores: np.ndarray, labels: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == labels).mean() * 100.0)


def save_scores(path: Path, scores: np.ndarray, labels: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, scores=scores, labels=labels)
    atomic_write_bytes(path, lambda handle: handle.write(buffer.getvalue()))


def run_ensemble(spec: EnsembleSpec, say: Callable[[str], None] = print) -> list[CellOutcome]:
    """One fused row per seed; a stream whose pretraining is not stored stops with the command that makes it."""
    load_plugins()
    if not METHODS.get(spec.method).pretrains:
        raise ConfigError(f"--method {spec.method}: does not pretrain; an ensemble fuses pretrained streams")
    label, weights = parse_weights(spec.weights)
    ensure_output_dir(Path(spec.out), force=False)
    with deterministic_mode(spec.deterministic), share_cpus(spec.threads, adapt=not spec.deterministic):
        return [_one_seed(spec, seed, label, weights, say) for seed in spec.seeds]


def _stream_scores(spec: EnsembleSpec, seed: int, stream: str, say: Callable[[str], None]) -> tuple[dict, object, object]:
    """(scores, labels and top-1 of the stream's probe; its config; the data stage) for one stream."""
    base = [*spec.overrides, Override("data.dataset", spec.dataset), Override("device", spec.device), Override("seed", seed)]
    probe = make_configs(spec.preset, base, [spec.method])[spec.method]
    data = load_dataset(probe.data, progress=spec.show_progress)
    split = spec.split or probe.data.split or data.default_split
    extra = [Override("data.split", split)] + ([Override("method.stream", stream)] if stream != "joint" else [])
    cfg = make_configs(spec.preset, [*base, *extra], [spec.method])[spec.method]
    pipeline = method_pipeline(cfg, spec.method, data)
    data = load_dataset(dataclasses.replace(cfg.data, pipeline=pipeline), progress=spec.show_progress)
    checkpoint = run_dir_for(RunSpec(out=spec.out), spec.method, cfg) / CHECKPOINT_FILE
    if not checkpoint.is_file():
        sets = " ".join(f"--set {item}" for item in [*spec.overrides, *extra[1:]])
        raise ConfigError(
            f"no stored {stream} pretraining of {spec.method} (seed {seed}) in {checkpoint.parent}; make it with: halp-bench run "
            f"--methods {spec.method} --dataset {spec.dataset} --split {split} --preset {spec.preset} --seeds {seed} {sets}".rstrip()
        )
    weights = read_weights(checkpoint)
    _, method, cfg = method_from_checkpoint(weights, cfg, data.spec(cfg.data.frames))
    if weights.state.get("epoch", cfg.pretrain.epochs) < cfg.pretrain.epochs:
        raise ConfigError(f"{checkpoint}: its pretraining is unfinished; run its `halp-bench run` again to complete it")
    train, test = data.split(split)
    device = resolve_device(cfg.device)
    seed_everything(seed)
    out: dict = {}
    ctx = ProtocolContext(cfg=cfg, device=device, show_progress=spec.show_progress, say=say)
    metrics = train_classifier(method.to(device).encoder_for_eval(), train, test, cfg.linear, ctx, finetune=False, label=f"linear {stream}", scores_out=out)
    return {"scores": out["scores"].numpy(), "labels": out["labels"].numpy(), "top1": metrics["top1"]}, cfg, (data, split, device)


def _one_seed(spec: EnsembleSpec, seed: int, label: str, weights: dict[str, float], say: Callable[[str], None]) -> CellOutcome:
    started, t0 = now(), time.perf_counter()
    streams, cfgs = {}, {}
    for stream in STREAMS:
        streams[stream], cfgs[stream], (data, split, device) = _stream_scores(spec, seed, stream, say)
    labels = streams["joint"]["labels"]
    cell = f"{spec.method}_{spec.dataset}_{split}_{spec.preset}_seed{seed}_{label.replace('/', '-')}".replace(" ", "")
    folder = Path(spec.out) / "ensembles" / cell
    for stream, found in streams.items():
        save_scores(folder / f"{stream}.npz", found["scores"], found["labels"])
    fused = top1(fuse({s: v["scores"] for s, v in streams.items()}, weights), labels)
    cfg = cfgs["joint"]
    fingerprint, warnings = check_and_fingerprint(data, spec.dataset, split, say)
    ensemble = {"weights": weights, "name": label, "pretrainings": {s: short_hash(c.to_dict()) for s, c in cfgs.items()}}
    config = {**cfg.to_dict(), "ensemble": ensemble}
    metrics = {"top1": fused, **{f"top1_{s}": v["top1"] for s, v in streams.items()}}
    row = ResultRow(
        method=spec.method,
        dataset=spec.dataset,
        split=split,
        protocol="linear",
        transfer_from=None,
        preset=spec.preset,
        seed=seed,
        config_id=short_hash({"ensemble": ensemble, "config": cfg.to_dict()}),
        metrics=metrics,
        report=cfg.eval.report,
        protocol_seconds=round(time.perf_counter() - t0, 3),
        settings={**settings_summary(cfg), "stream": f"3s {label}"},
        config=config,
        git_commit=git_commit(),
        versions=versions(),
        device=device_name(device),
        deterministic=spec.deterministic,
        run_dir=str(folder),
        started=started,
        finished=now(),
        data_fingerprint={"evaluated_on": fingerprint.to_dict()},
        data_warnings=warnings,
    )
    row = dataclasses.replace(row, **row_table_fields(row.to_dict()))  # what tables read instead of the plugins
    append_result(Path(spec.out) / RESULTS_FILE, row.to_dict())
    say(f"{spec.method} 3s ({label}) seed {seed}: top-1 {fused:.1f} (" + ", ".join(f"{s} {v['top1']:.1f}" for s, v in streams.items()) + ")")
    return CellOutcome(spec.method, seed, "linear", "ran", f"3s {label}", metrics=metrics)
