"""`halp-bench eval --checkpoint FILE`: the protocols on pretrained weights, without pretraining.

The weights come from one of our checkpoints (any machine, any output directory) or from a file
the authors released (halp_bench/weights.py reads the layouts). Each protocol and seed is one cell,
stored like those of `run`, with the file's SHA-256, layout and origin in the row (`weights`), so
tables show them as rows of their own ("halp (released weights)"). The evaluation settings come
from the preset and `--set` as for `run`; for our checkpoints the pretraining settings come from
the file, so the same preset and `--set` as the run give the run's own numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from halp_bench.common import distributed
from halp_bench.common.cpu_share import share_cpus
from halp_bench.common.loggers import RunLogger, open_logger
from halp_bench.config import RunConfig, make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.datasets.pipelines import apply_pipeline, resolve_pipeline
from halp_bench.engine.device import deterministic_mode, device_name, resolve_device, seed_everything
from halp_bench.errors import ConfigError
from halp_bench.identity import weights_config_id
from halp_bench.orchestration.cells import Cell, CellOutcome, CellStore, CellWork, Pretrained, run_cell
from halp_bench.orchestration.provenance import git_commit, settings_summary, versions
from halp_bench.orchestration.stages import check_and_fingerprint
from halp_bench.overrides import Override
from halp_bench.registry import METHODS, PROTOCOLS, load_plugins
from halp_bench.results.row import read_rows
from halp_bench.results.store import RESULTS_FILE, ensure_output_dir
from halp_bench.weights import WeightsFile, default_encoder, eval_encoder_from_authors, method_from_checkpoint, read_weights, stored_streams
from halp_bench.weights_checks import check_finite_weights, progress, progress_label

EVAL_PROTOCOLS = ("knn", "linear")  # transfer and semi fine-tune: name them to run them


@dataclass
class EvalSpec:
    checkpoint: Path
    dataset: str = "synthetic"
    split: str | None = None
    method: str | None = None  # required for the authors' files (the row's name); ours: read from the file
    encoder: str | None = None  # for the authors' files; None: stgcn for ST-GCN files, bigru_official for BiGRU ones
    protocols: list[str] | None = None  # None: EVAL_PROTOCOLS
    seeds: list[int] = field(default_factory=lambda: [0])
    preset: str = "cpu"
    overrides: list[str] = field(default_factory=list)
    device: str = "auto"
    out: Path = Path("results")
    force: bool = False
    show_progress: bool = True
    deterministic: bool = False
    threads: int | None = None
    loggers: tuple[str, ...] = ("csv",)  # tensorboard, wandb: each cell's training log (common/loggers.py)


def run_eval(spec: EvalSpec, say: Callable[[str], None] = print) -> list[CellOutcome]:
    """Evaluate the file's encoder with every protocol and seed; one stored row per cell."""
    load_plugins()
    protocols = spec.protocols or list(EVAL_PROTOCOLS)
    for name in protocols:
        PROTOCOLS.get(name)
    weights = read_weights(spec.checkpoint)
    check_finite_weights(weights)
    if weights.layout == "halp-bench":
        method_name = str(weights.state["method"])
        if spec.method and spec.method != method_name:
            raise ConfigError(f"--method {spec.method}: {spec.checkpoint} is a checkpoint of '{method_name}'")
    elif not spec.method:
        raise ConfigError(
            f"{spec.checkpoint} is a {weights.layout} file made by {weights.origin}: name its method with --method "
            f"(e.g. {weights.origin.split()[0] if weights.origin.split()[0] in METHODS else 'moco'})"
        )
    else:
        method_name = spec.method
    METHODS.get(method_name)
    ensure_output_dir(Path(spec.out), spec.force)
    # the cells' logs: runs/eval_<method>_<sha256>/<protocol>-<cell id>, as a pretraining's cells are named after its run
    log_dir = Path(spec.out) / "runs" / f"eval_{method_name}_{weights.sha256[:10]}"
    logger = open_logger(spec.loggers, log_dir) if distributed.info().is_main else RunLogger()
    try:
        with deterministic_mode(spec.deterministic), share_cpus(spec.threads, adapt=not spec.deterministic):
            return _evaluate(spec, weights, method_name, protocols, say, logger)
    finally:
        logger.close()


def eval_pipeline(weights: WeightsFile, cfg: RunConfig, method_name: str, stored: str) -> str:
    """The data pipeline the file's encoder is evaluated on (datasets/pipelines.py): `data.pipeline`
    when set; for an authors' file, the one its family trained on (ST-GCN files: `stgcn`, whose y is
    the camera's vertical; CMD/HaLP files: `agcn`, z up), on any data; for ours, the one its
    pretraining recorded, else the method family's on raw prepared data."""
    if cfg.data.pipeline != "auto":
        return cfg.data.pipeline
    if weights.layout != "halp-bench":
        return "stgcn" if weights.layout == "torchlight" else "agcn"
    recorded = weights.state["config"].get("data", {}).get("pipeline", "auto")
    return resolve_pipeline(recorded, METHODS.get(method_name).data_pipeline, stored, cfg.eval.protocol == "common")


def _evaluate(spec: EvalSpec, weights: WeightsFile, method_name: str, protocols: list[str], say: Callable[[str], None], logger: RunLogger) -> list[CellOutcome]:
    results_path = Path(spec.out) / RESULTS_FILE
    store = CellStore(results_path, {row.key: row for row in read_rows(results_path)}, spec.force, spec.show_progress)
    outcomes: list[CellOutcome] = []
    data = None
    for seed in spec.seeds:
        overrides = [*spec.overrides, Override("data.dataset", spec.dataset), Override("device", spec.device), Override("seed", seed)]
        if weights.layout != "halp-bench":
            overrides.append(Override("encoder.name", spec.encoder or default_encoder(weights)))
        # a --set key of another method is accepted and ignored (the same --set as a run of several methods works)
        cfg = make_configs(spec.preset, overrides, [method_name], ignore_others=True)[method_name]
        if data is None:
            data = load_dataset(cfg.data, progress=spec.show_progress)
            pipeline = eval_pipeline(weights, cfg, method_name, data.stored)
            data = apply_pipeline(data, pipeline)
            split = spec.split or cfg.data.split or data.default_split
            train, test = data.split(split)
            fingerprint, warnings = check_and_fingerprint(data, spec.dataset, split, say)
            device = resolve_device(cfg.device)
            _announce(spec, weights, cfg, method_name, split, say)
        cfg.data.split, cfg.data.pipeline = split, pipeline
        seed_everything(seed)
        if weights.layout == "halp-bench":
            _, method, cfg = method_from_checkpoint(weights, cfg, data.spec(cfg.data.frames))
            encoder = method.to(device).encoder_for_eval()
        else:
            encoder, cfg.encoder = eval_encoder_from_authors(weights, spec.encoder, cfg.eval.stream, data.spec(cfg.data.frames))
            encoder = encoder.to(device)
        for protocol in protocols:
            cell = Cell(method_name, spec.dataset, split, protocol, spec.preset, seed, None, weights_config_id(weights.sha256, protocol, cfg))
            row_fields = lambda source, cfg=cfg, device=device, warnings=warnings: dict(
                settings=settings_with_progress(cfg, weights),
                weights=described(weights),
                git_commit=git_commit(),
                versions=versions(),
                device=device_name(device),
                deterministic=spec.deterministic,
                threads=torch.get_num_threads(),
                data_warnings=warnings,
            )
            work = CellWork(
                cfg,
                train,
                test,
                {"evaluated_on": fingerprint.to_dict()},
                lambda encoder=encoder: Pretrained(encoder=encoder),
                device,
                lambda: logger,
                row_fields,
                detail=f"{weights.origin} weights",
            )
            outcomes.append(run_cell(cell, work, store, say))
    return outcomes


def _announce(spec: EvalSpec, weights: WeightsFile, cfg: RunConfig, method_name: str, split: str, say: Callable[[str], None]) -> None:
    """Say which file is evaluated, how it was read, and which streams it holds."""
    say(f"{spec.checkpoint}: {weights.layout} layout ({weights.origin}), sha256 {weights.sha256[:12]}; evaluating {method_name} on {spec.dataset}/{split}")
    if weights.layout != "halp-bench":
        held = list(stored_streams(weights, cfg.eval.stream))
        one = " (one unnamed stream, evaluated as eval.stream says)" if weights.layout == "torchlight" and len(held) == 1 else ""
        say(f"{spec.checkpoint.name} holds the query encoder(s) of stream(s) {', '.join(held)}{one}")


def described(weights: WeightsFile) -> dict[str, str]:
    """What a row records of the file, with how far an unfinished pretraining got (tables show it)."""
    label = progress_label(progress(weights))
    return {**weights.describe(), **({"progress": label} if label else {})}


def settings_with_progress(cfg: RunConfig, weights: WeightsFile) -> dict[str, object]:
    """The comparability settings, with the pretraining epochs the checkpoint actually did."""
    settings = settings_summary(cfg)
    done = progress(weights)
    if done is not None:
        settings["pretrain_epochs"] = done["epoch"] if progress_label(done) is None else f"{done['epoch']}+{done['iteration']} it. of {done['epochs']}"
    return settings
