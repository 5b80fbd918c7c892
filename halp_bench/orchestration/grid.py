"""The run grid: methods x seeds, each pretrained once, then every requested protocol.

A pretraining lives in `runs/<method>_<dataset>_<split>_<preset>_seed<s>_<pretrain id>/`, the id
hashing only the settings pretraining depends on, so every protocol reuses it, and so does a later
transfer from that dataset (`run --dataset pku2 --protocols transfer --transfer-from ntu60` after
`run --dataset ntu60`). Cells already in the results store (same method, dataset, split, protocol,
transfer source, preset, seed and settings) are skipped; an unfinished pretraining resumes from its
checkpoint; a failing cell, or a protocol that does not apply, is reported in the summary and does
not stop the others.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from halp_bench.common import distributed
from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.common.cpu_share import share_cpus
from halp_bench.common.loggers import RunLogger, open_logger
from halp_bench.config import RunConfig, make_configs
from halp_bench.datasets.catalog import load_dataset
from halp_bench.engine import parallel
from halp_bench.engine.device import deterministic_mode, device_name, resolve_device, seed_everything
from halp_bench.engine.pretrain import pretrain
from halp_bench.engine.state import PretrainResult
from halp_bench.errors import ConfigError, DataError, HalpBenchError, TrainingError
from halp_bench.identity import config_id, pretrain_signature
from halp_bench.methods.base import create_method, default_methods
from halp_bench.methods.requirements import check_encoder_hooks, check_finetune_head
from halp_bench.orchestration.cells import Cell, CellOutcome, CellStore, CellWork, Pretrained, run_cell
from halp_bench.orchestration.launch.guard import CellGuard
from halp_bench.orchestration.monitor import knn_monitor
from halp_bench.orchestration.provenance import git_commit, settings_summary, versions
from halp_bench.orchestration.run_dirs import MONITOR_FILE, prepare_run_dir, run_dir_name
from halp_bench.orchestration.stages import Plan, Stage, check_and_fingerprint, method_pipeline
from halp_bench.overrides import Override
from halp_bench.protocols.transfer import TRANSFER_PAIRS, check_same_input, parse_source
from halp_bench.registry import METHODS, PROTOCOLS, load_plugins
from halp_bench.results.row import PretrainSummary, read_rows
from halp_bench.results.store import RESULTS_FILE, ensure_output_dir
from halp_bench.validation import check_grid

DEFAULT_PROTOCOLS = ("knn", "linear", "transfer")  # `semi` runs only when named: too slow by default


@dataclass
class RunSpec:
    """One `halp-bench run`: the grid axes and where results go."""

    methods: list[str] | None = None  # None: every registered method in the default grid (methods.base.default_methods)
    dataset: str = "synthetic"
    split: str | None = None  # None: the dataset's default split
    protocols: list[str] | None = None  # None: DEFAULT_PROTOCOLS
    transfer_from: str | None = None  # transfer source "NAME" or "NAME:split"; None: TRANSFER_PAIRS
    preset: str = "cpu"
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    out: Path = Path("results")
    force: bool = False
    show_progress: bool = True
    deterministic: bool = False  # deterministic kernels (engine/device.py: deterministic_mode)
    compile: bool = False  # torch.compile the encoders while training (engine/compile.py); not a setting of the results
    threads: int | None = None  # CPU threads; None: a fair share of the cores (common/cpu_share.py)
    loggers: tuple[str, ...] = ("csv",)  # training logs: log.csv always, plus tensorboard and/or wandb (common/loggers.py)


class Configs:
    """Every method's configuration per (dataset, split, seed) of one run, made once: a `--set` key
    is checked against all the run's methods together."""

    def __init__(self, spec: RunSpec, methods: list[str]):
        self.spec, self.methods = spec, methods
        self._made: dict[tuple[str, str, int], dict[str, RunConfig]] = {}

    def get(self, method: str, stage: Stage, seed: int) -> RunConfig:
        key = (stage.dataset, stage.split, seed)
        if key not in self._made:
            spec = self.spec
            self._made[key] = make_configs(
                spec.preset,
                [
                    *spec.overrides,
                    Override("data.dataset", stage.dataset),
                    Override("data.split", stage.split),
                    Override("device", spec.device),
                    Override("seed", seed),
                ],
                self.methods,
            )
        return self._made[key][method]


def run_dir_for(spec: RunSpec, method_name: str, cfg: RunConfig) -> Path:
    return Path(spec.out) / "runs" / run_dir_name(method_name, cfg)


def run_grid(spec: RunSpec, say: Callable[[str], None] = print, retrained: set[Path] | None = None) -> list[CellOutcome]:
    """`_run_cells` into a writable output directory (checked before any work), with deterministic
    kernels when `spec.deterministic`, on `spec.threads` CPU threads or this process's fair share of
    the cores among halp-bench processes (fixed for a deterministic run). Under torchrun rank 0 alone
    checks (and creates) the directory: another rank would find rank 0's write probe in it."""
    if distributed.is_main_process():
        ensure_output_dir(Path(spec.out), spec.force)
    with deterministic_mode(spec.deterministic), share_cpus(spec.threads, adapt=not spec.deterministic):
        return _run_cells(spec, say, retrained)


def _run_cells(spec: RunSpec, say: Callable[[str], None], retrained: set[Path] | None) -> list[CellOutcome]:
    """Run every (method, seed, protocol) cell of `spec`; return what ran, was skipped or failed.

    Each (method, seed) is pretrained once per pretraining dataset and shared by its protocols.
    `retrained` collects the run directories `--force` has already retrained (pass one set to
    several calls, e.g. the entries of a suite, so a shared checkpoint is retrained only once).
    """
    methods, protocols = _grid_names(spec)
    retrained = set() if retrained is None else retrained
    first_configs = make_configs(spec.preset, [*spec.overrides, Override("device", spec.device)], methods)  # checks --set first
    check_encoder_hooks(first_configs)  # and that each method's encoder has the hooks it calls, before any training
    check_finetune_head(first_configs, protocols)  # and the tokens finetune.head=mamp_mlp reads
    base = first_configs[methods[0]]
    stages = Stages(spec, base, protocols, say)
    device = parallel.setup(resolve_device(base.device))
    main = stages.get(spec.dataset, spec.split)
    configs = Configs(spec, methods)
    _check_before_training(spec, methods, configs, stages, main)
    results_path = Path(spec.out) / RESULTS_FILE
    guard = CellGuard(spec)  # claims on run directories and one file per cell: many processes may share spec.out
    store = CellStore(results_path, {row.key: row for row in read_rows(results_path)}, spec.force, spec.show_progress, guard)
    outcomes: list[CellOutcome] = []
    for seed in spec.seeds:
        for method_name in methods:
            pretrained: dict[Path, Pretrained] = {}  # run dir -> the pretrained method, or why it failed
            loggers: dict[Path, RunLogger] = {}  # run dir -> its training log (opened on rank 0 alone)
            try:
                pipeline = method_pipeline(configs.get(method_name, main, seed), method_name, main.data)
                for protocol, plan in stages.plans_for(pipeline).items():
                    if isinstance(plan, str):
                        outcomes.append(CellOutcome(method_name, seed, protocol, "skipped", plan))
                        continue
                    cell, work = _grid_cell(spec, method_name, seed, protocol, plan, pipeline, configs, device, say, retrained, pretrained, loggers)
                    outcomes.append(run_cell(cell, work, store, say))
            finally:
                for logger in loggers.values():
                    logger.close()
                guard.release()
    return outcomes


def _grid_names(spec: RunSpec) -> tuple[list[str], list[str]]:
    """The grid's methods and protocols; unknown names fail before any work starts."""
    load_plugins()
    methods = spec.methods or default_methods()
    protocols = spec.protocols or list(DEFAULT_PROTOCOLS)
    for name in methods:
        METHODS.get(name)
    for name in protocols:
        PROTOCOLS.get(name)
    if spec.transfer_from and "transfer" not in protocols:
        raise ConfigError("--transfer-from applies to the transfer protocol, which is not among --protocols")
    return methods, protocols


class Stages:
    """Every data split a grid uses, loaded once per (dataset, split, pipeline), and each protocol's
    plan on the data as a pipeline prepares it (datasets/pipelines.py)."""

    def __init__(self, spec: RunSpec, base: RunConfig, protocols: list[str], say: Callable[[str], None]):
        self.spec, self.base, self.protocols, self.say = spec, base, protocols, say
        self.stages: dict[tuple[str, str | None, str], Stage] = {}
        self.plans: dict[str, dict[str, Plan | str]] = {}

    def get(self, dataset: str, split: str | None, pipeline: str = "auto") -> Stage:
        """The dataset split through `pipeline`, loaded, checked (refused when it cannot train) and fingerprinted."""
        if (dataset, split, pipeline) not in self.stages:
            data = load_dataset(dataclasses.replace(self.base.data, dataset=dataset, pipeline=pipeline), progress=self.spec.show_progress)
            name = split or (self.base.data.split if dataset == self.spec.dataset else "") or data.default_split
            train, test = data.split(name)
            self.stages[(dataset, split, pipeline)] = Stage(dataset, name, data, train, test, *check_and_fingerprint(data, dataset, name, self.say))
        return self.stages[(dataset, split, pipeline)]

    def plans_for(self, pipeline: str) -> dict[str, Plan | str]:
        """Each protocol's plan (or why it is skipped) on the data as `pipeline` prepares it."""
        if pipeline not in self.plans:
            on = lambda dataset, split: self.get(dataset, split, pipeline)
            first = on(self.spec.dataset, self.spec.split)
            self.plans[pipeline] = {p: transfer_plan(self.spec, first, on) if p == "transfer" else Plan(first, first) for p in self.protocols}
        return self.plans[pipeline]


def _check_before_training(spec: RunSpec, methods: list[str], configs: Configs, stages: Stages, main: Stage) -> None:
    """Every method against the data it will see (validation.check_grid), before any trains."""
    pipelines = {name: method_pipeline(configs.get(name, main, spec.seeds[0]), name, main.data) for name in methods}
    for pipeline in dict.fromkeys(pipelines.values()):
        users = [name for name in methods if pipelines[name] == pipeline]
        for pretrain_stage in {id(p.pretrain_on): p.pretrain_on for p in stages.plans_for(pipeline).values() if isinstance(p, Plan)}.values():
            check_grid(
                users,
                lambda name, on=pretrain_stage: configs.get(name, on, spec.seeds[0]),
                pretrain_stage.data,
                len(pretrain_stage.train),
                pretrain_stage.label,
            )


def _grid_cell(
    spec: RunSpec,
    method_name: str,
    seed: int,
    protocol: str,
    plan: Plan,
    pipeline: str,
    configs: Configs,
    device: torch.device,
    say: Callable[[str], None],
    retrained: set[Path],
    pretrained: dict[Path, Pretrained],
    loggers: dict[Path, RunLogger],
) -> tuple[Cell, CellWork]:
    """One cell of the grid and what it is computed with; its pretraining runs (once per run
    directory, shared through `pretrained` and `loggers`) only when the pipeline asks for it."""
    target = plan.evaluate_on
    cfg = configs.get(method_name, target, seed)
    pre_cfg = configs.get(method_name, plan.pretrain_on, seed)
    cfg.data.pipeline = pre_cfg.data.pipeline = pipeline  # the data as the method's family prepares it (datasets/pipelines.py)
    run_dir = run_dir_for(spec, method_name, pre_cfg)
    cell = Cell(
        method_name, target.dataset, target.split, protocol, spec.preset, seed, plan.transfer_from, config_id(method_name, protocol, cfg, pre_cfg), run_dir
    )
    world = distributed.info()

    def log() -> RunLogger:  # opened when the pipeline first needs it: a run whose cells are all done writes nothing
        if run_dir not in loggers:
            loggers[run_dir] = open_logger(spec.loggers, run_dir, pre_cfg.to_dict()) if world.is_main else RunLogger()
        return loggers[run_dir]

    def obtain() -> Pretrained:
        if run_dir not in pretrained:
            log()
            pretrained[run_dir] = pretrain_cell(spec, method_name, plan.pretrain_on, pre_cfg, device, run_dir, say, retrained, loggers[run_dir])
        return pretrained[run_dir]

    def row_fields(source: Pretrained) -> dict[str, Any]:
        return _row_fields(source, spec, method_name, cfg, pre_cfg, plan, device, run_dir)

    detail = f"{plan.transfer_from} -> {target.label}" if plan.transfer_from else ""
    return cell, CellWork(
        cfg,
        target.train,
        target.test,
        plan.data_fingerprint(),
        obtain,
        device,
        log,
        row_fields,
        detail,
        compile_encoders=spec.compile,
        pretrain_epochs=pre_cfg.pretrain.epochs,
    )


def _row_fields(
    source: Pretrained, spec: RunSpec, method_name: str, cfg: RunConfig, pre_cfg: RunConfig, plan: Plan, device: torch.device, run_dir: Path
) -> dict[str, Any]:
    """The row fields only the grid knows: the pretraining's summary and signature, provenance, the run directory."""
    result, world = source.result, distributed.info()
    return dict(
        pretrain=PretrainSummary(
            epochs=result.epochs,
            resumed_from=result.resumed_from,
            time_per_epoch_s=result.time_per_epoch,
            peak_memory_mb=result.peak_mb,
            peak_memory_increase_mb=result.increase_mb,
            final_loss=result.losses[-1] if result.losses else {},
            processes=world.world_size,
            batch_per_process=pre_cfg.pretrain.batch_size // world.world_size,
            effective_batch=pre_cfg.pretrain.batch_size,
            lr=pre_cfg.pretrain.lr,
            precision=pre_cfg.precision,
            compile_seconds=round(result.compile_seconds, 3),
        ),
        settings=settings_summary(cfg),
        pretrain_config=pretrain_signature(method_name, pre_cfg),
        git_commit=git_commit(),
        versions=versions(),
        device=device_name(device),
        deterministic=spec.deterministic,
        threads=torch.get_num_threads(),
        run_dir=str(run_dir),
        data_warnings=list(dict.fromkeys(plan.pretrain_on.warnings + plan.evaluate_on.warnings)),
    )


def transfer_plan(spec: RunSpec, main: Stage, stage: Callable[[str, str | None], Stage]) -> Plan | str:
    """The transfer cell's source and target (see protocols/transfer.py), or why it does not apply."""
    if spec.transfer_from:
        name, split = parse_source(spec.transfer_from)
        source, target = stage(name, split), main
    elif main.dataset in TRANSFER_PAIRS:
        source = main
        try:
            target = stage(TRANSFER_PAIRS[main.dataset], None)
        except (ConfigError, DataError) as exc:  # e.g. not prepared: the other protocols go on
            return f"default transfer target '{TRANSFER_PAIRS[main.dataset]}' is not available ({exc})"
    else:
        return f"no default transfer target for '{main.dataset}'; give --transfer-from SOURCE"
    check_same_input(source.data, target.data)
    return Plan(source, target, source.label)


def pretrain_cell(
    spec: RunSpec,
    method_name: str,
    stage: Stage,
    cfg: RunConfig,
    device: torch.device,
    run_dir: Path,
    say: Callable[[str], None],
    retrained: set[Path],
    logger: RunLogger | None = None,
) -> Pretrained:
    """Build the method and pretrain it (or load its finished checkpoint), logging to `logger`; a
    failure is returned as its reason (`user_error` for a TrainingError, e.g. a NaN loss) so that
    one broken method does not cost the other cells."""
    logger = logger or RunLogger()
    try:
        seed_everything(cfg.seed)
        method = create_method(method_name, cfg, stage.data.spec(cfg.data.frames))
        if not method.pretrains:
            method.to(device)
            return Pretrained(method, PretrainResult(epochs=0))
        prepare_run_dir(spec.force, method_name, stage, run_dir, retrained, say)
        monitor = knn_monitor(method, stage, cfg, device, run_dir / MONITOR_FILE, logger) if cfg.eval.monitor_every > 0 else None
        started = time.perf_counter()
        result = pretrain(
            method_name,
            method,
            stage.train,
            cfg,
            device,
            run_dir,
            show_progress=spec.show_progress,
            say=say,
            on_epoch_end=monitor,
            compile_encoders=spec.compile,
            logger=logger,
        )
        if result.resumed_from < cfg.pretrain.epochs:
            say(f"pretrained {method_name} on {stage.label} in {time.perf_counter() - started:.1f}s ({result.time_per_epoch:.2f}s/epoch)")
        return Pretrained(method, result)
    except TrainingError as exc:  # the last good checkpoint is kept; the other cells go on
        return Pretrained(failure=str(exc), user_error=True)
    except HalpBenchError:
        raise
    except Exception as exc:  # one broken cell must not cost the others
        trace = traceback.format_exc().encode()
        if distributed.info().is_main:
            atomic_write_bytes(run_dir / "error.log", lambda handle: handle.write(trace))
        return Pretrained(failure=f"pretraining failed: {type(exc).__name__}: {exc}")
