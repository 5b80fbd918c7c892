"""The `halp-bench` command line: parse, call the library, print with rich. Nothing else here."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from halp_bench.errors import ConfigError, DataError, HalpBenchError, HalpBenchWarning
from halp_bench.validation import allowed_words, check_settings, check_stored_methods, device_setting, refuse_inapplicable, threads_warning

if TYPE_CHECKING:
    from halp_bench.results.row import ResultRow

console = Console()
err_console = Console(stderr=True)


def _split_list(value: str | None, option: str | None = None) -> list[str] | None:
    """The comma-separated items of an option; None when it was not given. Given but empty (e.g.
    --methods '') is an error, not the default."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter(f"'{value}': expected at least one comma-separated name", param_hint=f"'{option}'" if option else None)
    return items


def _given(option: str) -> bool:
    """Whether the current command's `option` (its parameter name) was given, not defaulted."""
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(option) is not ParameterSource.DEFAULT


def _warn(message: str | None) -> None:
    """One yellow line on stderr (nothing for None)."""
    if message:
        err_console.print(f"[yellow]warning: {escape(message)}[/yellow]", highlight=False, soft_wrap=True)


def _parse_seeds(value: str) -> list[int]:
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise click.BadParameter(f"'{value}': expected comma-separated integers >= 0, e.g. 0,1,2", param_hint="'--seeds'")
    return seeds


LOGGER_OPTION = click.option(
    "--logger", default="csv", show_default=True, metavar="csv|tensorboard|wandb",
    help="Training logs, comma-separated (e.g. csv,tensorboard): runs/<run>/log.csv is always written; tensorboard writes event "
         "files into the run directories (tensorboard --logdir <out>/runs; pip install 'halp-bench[tensorboard]'); wandb logs to "
         "Weights & Biases under its WANDB_* settings (WANDB_MODE=offline needs no network; pip install 'halp-bench[wandb]'). "
         "Losses, learning rate, epoch time, peak memory and the kNN monitor of every pretraining and protocol cell, under the "
         "run directory's name.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """halp-bench: pretrain skeleton-sequence encoders without labels and compare methods under
    the kNN, linear and transfer protocols, with tables that keep every comparability setting."""
    ctx.obj = {"debug": debug}


def _launch_options(command):
    """`run`'s launcher options (halp_bench/launch/): given as `**launch` to the command. Unset values
    come from HALP_BENCH_SLURM_<NAME> or the [slurm] table of ~/.config/halp-bench/launcher.toml."""
    options = [
        click.option("--launcher", type=click.Choice(["local", "slurm"]), default=None,
                     help="Run each pretraining (method x seed) with its protocol cells as one submitit job: `local` (processes on "
                          "this machine, at most --max-jobs at once; waits for them) or `slurm` (a job array; returns once "
                          "submitted unless --wait). Default: everything in this process."),
        click.option("--partition", default=None, help="Slurm partition (env HALP_BENCH_SLURM_PARTITION; config key partition)."),
        click.option("--account", default=None, help="Slurm account to charge."),
        click.option("--qos", default=None, help="Slurm quality of service."),
        click.option("--constraint", default=None, help="Slurm node constraint (features), e.g. a100."),
        click.option("--time", default=None, help="Time limit per job: minutes or [D-]HH:MM[:SS] (default 24:00:00); a job reaching "
                     "it checkpoints and is requeued."),
        click.option("--gpus-per-job", "gpus", type=int, default=None, help="GPUs per job (default 0); more than 1 runs DDP, one task per GPU."),
        click.option("--tasks-per-job", "tasks", type=int, default=None,
                     help="Processes per job, each a DDP rank (default: one per GPU, at least one; CPU ranks use gloo)."),
        click.option("--cpus-per-task", "cpus", type=int, default=None, help="CPUs per task (default 4)."),
        click.option("--mem", default=None, help="Memory per job, e.g. 64G (default: the partition's)."),
        click.option("--max-jobs", type=int, default=None, help="Jobs running at once (default 64): Slurm's array throttle, or local processes."),
        click.option("--signal-delay", "signal_delay_s", type=int, default=None,
                     help="Seconds before the time limit at which a job is signalled to requeue itself (default 120)."),
        click.option("--max-requeues", type=int, default=None, help="Requeues after reaching the time limit (default 10; preemption is not counted)."),
        click.option("--sbatch", multiple=True, metavar="KEY=VALUE", help="An extra sbatch line, e.g. --sbatch mail-type=END (repeatable)."),
        click.option("--wait", is_flag=True, help="With --launcher slurm: wait for the jobs, then print the cells and tables."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@_launch_options
@click.option("--methods", help="Comma-separated method names (default: the paper's own rows and every plugin; the field's "
              "methods, e.g. skeletonclr, run when named or with --suite field; see `halp-bench list`).")
@click.option("--dataset", default="synthetic", show_default=True, help="Registered dataset name.")
@click.option("--split", default=None, help="Named split (default: the dataset's default, e.g. xsub).")
@click.option("--protocols", help="Comma-separated protocols (default: knn,linear,transfer; semi only when named).")
@click.option("--transfer-from", default=None, metavar="SOURCE[:SPLIT]",
              help="Transfer source: pretrain on SOURCE (or reuse its checkpoint), fine-tune on --dataset. Without it, "
                   "synthetic transfers to synthetic-target and ntu60/ntu120 to pku2; other datasets skip transfer.")
@click.option("--suite", default=None, help="Run every entry of a named suite (e.g. paper-table1, synthetic-all; an unknown "
              "name lists them) or of a suite .json file; the suite sets datasets, splits and protocols.")
@click.option("--preset", type=click.Choice(["auto", "cpu", "paper", "official"]), default="auto", show_default=True,
              help="Recipe: `paper` (the paper's text), `official` (the authors' code as it produced the published tables: per-frame "
                   "BiGRU, their scripts' values per method and dataset, best-of-test reporting) or `cpu` (minutes on a laptop). "
                   "`auto`: cpu for the built-in synthetic data, paper otherwise.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, e.g. --set method.temperature=0.1 (repeatable).")
@click.option("--common-protocol", is_flag=True, help="Evaluate every method under the preset's protocol settings, not each "
              "method's own (e.g. the ST-GCN family's linear probe at lr 3.0, 100 epochs): --set eval.protocol=common.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps.")
@click.option("--precision", type=click.Choice(["32", "bf16", "16-mixed"]), default=None,
              help="Pretraining precision (default 32): bf16 autocast (CPU and GPU) or 16-mixed (float16 with a gradient "
                   "scaler, CUDA only); losses and hallucination stay in float32. Part of the settings: its cells are separate.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="One seed (default 0).")
@click.option("--seeds", default=None, help="Several seeds, e.g. 0,1,2 (each repeats every cell).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Output directory: results.jsonl, runs/, tables/.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live (default: $HALP_BENCH_DATA or ./data).")
@click.option("--force", is_flag=True, help="Redo cells already in the results store (and retrain).")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels (and CUBLAS_WORKSPACE_CONFIG on CUDA): the same seed on the same "
              "machine gives identical results rows. The CPU thread count stays fixed for the whole run whatever else runs, and a resumed "
              "run takes the count its checkpoint was made with (docs/checks.md). May be slower.")
@click.option("--compile", "compile_encoders", is_flag=True,
              help="torch.compile the encoders while pretraining (CPU needs a C++ compiler). The first step compiles (about a minute "
                   "at the cpu preset's size, several at the paper's; reported apart from the epoch times); the results are "
                   "those of the eager code to float rounding.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch (default: this process's fair share of the "
              "cores, re-checked every second: all of them alone, half each beside another halp-bench run; fixed for --deterministic).")
@LOGGER_OPTION
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(methods, dataset, split, protocols, transfer_from, suite, preset, overrides, common_protocol, device, precision, seed, seeds, out, data_root,
        force, deterministic, compile_encoders, threads, logger, no_progress, **launch) -> None:
    """Pretrain each method once, evaluate it with every protocol, store rows, print the tables.

    Every method is pretrained once per (dataset, split, preset, seed, pretraining settings), in
    <out>/runs/, and reused by every protocol and by later runs; cells already in
    <out>/results.jsonl are skipped (--force redoes them). Transfer pretrains on a source and
    fine-tunes on a target (see --transfer-from); its rows have the target as dataset and the
    source in `transfer_from`. The tables are printed and written to <out>/tables/.
    Under torchrun every process trains its share of each global batch; rank 0 alone prints and writes.
    With --launcher each pretraining and its cells is one job (docs/cluster.md); `halp-bench status` follows them.
    """
    from halp_bench.common.distributed import is_main_process
    from halp_bench.common.loggers import parse_loggers
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE
    from halp_bench.runner import CellOutcome, RunSpec, run_grid

    if seed is not None and seeds is not None:
        raise click.UsageError("give --seed or --seeds, not both")
    loggers = parse_loggers(logger)
    seed_list = _parse_seeds(seeds) if seeds is not None else [seed if seed is not None else 0]
    refuse_inapplicable("run", overrides)
    device = device_setting(overrides, device, _given("device"))
    _warn(threads_warning(threads))
    from halp_bench.launch.plan import unique

    note = (lambda msg: console.print(f"[yellow]{escape(msg)}[/yellow]")) if is_main_process() else (lambda _: None)
    seed_list = unique(seed_list, "seed(s)", note)
    methods = ",".join(unique(_split_list(methods, "--methods"), "method(s)", note)) if methods is not None else methods
    if data_root is not None:
        overrides = (*overrides, f"data.data_root={data_root}")
    if precision is not None:
        overrides = (*overrides, f"precision={precision}")
    if common_protocol:
        overrides = (*overrides, "eval.protocol=common")
    main = is_main_process()
    spec = RunSpec(
        methods=_split_list(methods, "--methods"), dataset=dataset, split=split, protocols=_split_list(protocols, "--protocols"),
        transfer_from=transfer_from, preset=preset,
        overrides=list(overrides), seeds=seed_list, device=device, out=out, force=force, show_progress=not no_progress,
        deterministic=deterministic, compile=compile_encoders, threads=threads, loggers=loggers,
    )
    if launch["launcher"] is not None:
        return _run_launched(spec, suite, launch)
    retrained: set[Path] = set()  # a checkpoint shared by suite entries is retrained once under --force
    outcomes = []
    for entry in _checked_entries(suite, spec, say=console.print if main else lambda _: None):
        where = f"{entry.dataset}{'/' + entry.split if entry.split else ''}"
        try:
            cells = run_grid(entry, say=lambda msg: console.print(msg) if main else None, retrained=retrained)
        except (ConfigError, DataError) as exc:  # in a suite, e.g. a dataset not prepared: the other entries go on
            if not suite:
                raise
            cells = [CellOutcome("*", s, ",".join(entry.protocols or []), "failed", str(exc)) for s in entry.seeds]
        if main:
            _print_cells(cells, f"cells: {where}" + (f" (from {entry.transfer_from})" if entry.transfer_from else ""))
        outcomes += cells
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "skipped", "failed")}
    if main:
        console.print(f"{counts['ran']} ran, {counts['skipped']} skipped, {counts['failed']} failed")
        _print_tables(read_rows(out / RESULTS_FILE), out, ("md", "tex"), shown=("md",))
    user_errors = dict.fromkeys(o.detail for o in outcomes if o.status == "failed" and o.user_error)
    for detail in user_errors:  # e.g. a NaN loss: one line each, as for any other user error
        err_console.print(f"[red]error: {escape(detail)}[/red]", highlight=False, soft_wrap=True)
    if counts["failed"]:
        sys.exit(2 if user_errors else 1)


def _run_launched(spec, suite: str | None, launch: dict) -> None:
    """`run --launcher`: submit the units of every entry (halp_bench/launch/submit.py); print the
    cells and tables once the jobs are done (local, or slurm with --wait)."""
    from halp_bench.cells import CellOutcome
    from halp_bench.launch.options import resolve_options
    from halp_bench.launch.plan import check_overrides, units_of
    from halp_bench.launch.submit import launch as submit_units
    from halp_bench.methods.base import default_methods
    from halp_bench.registry import load_plugins
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    launcher, wait = launch.pop("launcher"), launch.pop("wait")
    options = resolve_options(launch)
    load_plugins()
    outcomes = []
    for entry in _checked_entries(suite, spec, say=console.print):  # every entry's settings checked before any job is submitted
        check_overrides(entry, entry.methods or default_methods())
        units = units_of(entry, entry.methods or default_methods())
        outcomes += [CellOutcome(**o) for o in submit_units(entry, units, launcher, options, console.print, wait)]
    if not outcomes:
        return
    _print_cells(outcomes, f"cells ({launcher} jobs)")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "skipped", "failed")}
    console.print(f"{counts['ran']} ran, {counts['skipped']} skipped, {counts['failed']} failed")
    _print_tables(read_rows(spec.out / RESULTS_FILE), spec.out, ("md", "tex"), shown=("md",))
    if counts["failed"]:
        sys.exit(1)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="The results store to report on.")
@click.option("--json", "as_json", is_flag=True, help="Print the cells and totals as JSON.")
def status(out: Path, as_json: bool) -> None:
    """Every cell of the store's grids: done, running (job, node, epoch, time left), queued, failed
    (error and log file) or skipped, then a one-line total. Reads the store (jobs/, claims/, cells/) and squeue."""
    import json

    from halp_bench.launch.status import as_json as status_json
    from halp_bench.launch.status import grid_status, totals_line

    if not out.is_dir():
        raise click.BadParameter(f"{out}: no such directory", param_hint="'--out'")
    cells = grid_status(out)
    if as_json:
        click.echo(json.dumps(status_json(cells), indent=1))
        return
    styles = {"done": "green", "running": "cyan", "queued": "yellow", "failed": "red", "skipped": "dim"}
    shown = Table(title=f"cells of {out}")
    for column in ("method", "seed", "dataset", "protocol", "state", "job", "node", "epoch", "time left", "detail"):
        shown.add_column(column)
    for c in cells:
        detail = c.error or (f"top1 {c.top1:.1f}" if c.top1 is not None else "")
        shown.add_row(c.method, str(c.seed), c.dataset, c.protocol, f"[{styles[c.state]}]{c.state}[/{styles[c.state]}]", c.job or "",
                      c.node or "", c.epoch or "", c.time_left or "", escape(detail))
    console.print(shown)
    for c in cells:  # whole, not cut to the table's width: what to read, and where
        if c.state == "failed":
            console.print(f"failed: {c.method} seed {c.seed} {c.protocol}: {escape(c.error or '')}" + (f" (log: {escape(c.log)})" if c.log else ""),
                          soft_wrap=True, highlight=False)
    console.print(totals_line(cells))


@cli.command("eval")
@click.option("--checkpoint", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="Weights to evaluate: a checkpoint.pt of `run` (from any machine), or a file the authors released: CMD/HaLP "
                   "checkpoint_XXXX.pth.tar (BiGRU), CrosSCLR/AimCLR .pt (ST-GCN). Loaded without running code.")
@click.option("--method", default=None, help="The method that made the authors' file (its rows' name, e.g. halp, cmd, moco); "
              "read from our own checkpoints.")
@click.option("--encoder", default=None,
              help="Encoder for the authors' BiGRU files: bigru_official (default; their exact math, checked against their "
                   "frame-by-frame computation) or bigru (a true bidirectional GRU with the same weights). ST-GCN files: stgcn.")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset to evaluate on (name or path, as for `run`).")
@click.option("--split", default=None, help="Named split (default: the dataset's default).")
@click.option("--protocols", default=None, help="Comma-separated (default: knn,linear; transfer and semi fine-tune the weights when named).")
@click.option("--preset", type=click.Choice(["cpu", "paper", "official"]), default=None,
              help="Recipe of the protocols (default: cpu for the synthetic data, paper otherwise); our checkpoints keep their own "
                   "pretraining settings.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, e.g. --set eval.stream=motion (repeatable).")
@click.option("--seeds", default="0", show_default=True, help="Seeds of the protocols (linear heads, data order), e.g. 0,1,2.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Results store (results.jsonl) and tables.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live.")
@click.option("--force", is_flag=True, help="Redo cells already in the results store.")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch (default: a fair share of the cores).")
@LOGGER_OPTION
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def evaluate(checkpoint, method, encoder, dataset, split, protocols, preset, overrides, seeds, device, out, data_root, force, deterministic,
             threads, logger, no_progress) -> None:
    """Run the protocols on pretrained weights without pretraining, store rows, print the tables.

    Each row records the file's SHA-256, layout and origin; tables show such rows apart, e.g.
    "halp (released weights)". Our own checkpoints evaluated with the preset and --set of their
    run give that run's numbers. A file that does not fit (missing or unexpected keys, wrong shapes)
    or that would need code to unpickle is refused in one line.
    """
    from halp_bench.common.loggers import parse_loggers
    from halp_bench.config import resolve_preset
    from halp_bench.evaluate import EvalSpec, run_eval
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    loggers = parse_loggers(logger)
    refuse_inapplicable("eval", overrides)
    device = device_setting(overrides, device, _given("device"))
    _warn(threads_warning(threads))
    if data_root is not None:
        overrides = (*overrides, f"data.data_root={data_root}")
    spec = EvalSpec(
        checkpoint=checkpoint, dataset=dataset, split=split, method=method, encoder=encoder, protocols=_split_list(protocols, "--protocols"),
        seeds=_parse_seeds(seeds), preset=resolve_preset(preset, dataset), overrides=list(overrides),
        device=device, out=out, force=force, show_progress=not no_progress, deterministic=deterministic, threads=threads,
        loggers=loggers,
    )
    cells = run_eval(spec, say=console.print)
    _print_cells(cells, f"cells: {checkpoint.name} on {dataset}{'/' + split if split else ''}")
    _print_tables(read_rows(out / RESULTS_FILE), out, ("md", "tex"), shown=("md",))


def _checked_entries(suite: str | None, spec, say) -> list:
    """The run's entries (the suite's, or `spec`), each with its preset resolved ("auto": cpu for
    the synthetic data, paper otherwise), and every entry's settings checked before the first trains."""
    from halp_bench.config import resolve_preset

    entries = _suite_specs(suite, spec) if suite else [spec]
    for entry in entries:
        if entry.preset == "auto":
            entry.preset = resolve_preset(entry.preset, entry.dataset)
            say(f"[dim]preset: {entry.preset} (auto for dataset '{entry.dataset}')[/dim]")
    check_settings(entries)
    return entries


@cli.command("ensemble")
@click.option("--method", required=True, help="A single-stream method whose joint, motion and bone pretrainings are stored "
              "(halp-bench run --set method.stream=motion|bone, with the same preset, settings and seeds).")
@click.option("--weights", "weights", default="aimclr", show_default=True,
              help="Stream weights: aimclr (0.6 joint, 0.4 motion, 0.6 bone, AimCLR's ensemble script), equal, or joint,motion,bone numbers.")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset of the pretrainings (name or path, as for `run`).")
@click.option("--split", default=None, help="Named split (default: the dataset's default).")
@click.option("--preset", type=click.Choice(["cpu", "paper", "official"]), default=None, help="The pretrainings' preset (default as for `run`).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="The pretrainings' other --set values (repeatable).")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. 0,1,2: one fused row each.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Results store of the pretrainings.")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (default: a fair share of the cores).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def ensemble(method, weights, dataset, split, preset, overrides, seeds, device, out, deterministic, threads, no_progress) -> None:
    """Three-stream rows: linear probes on the stored joint, motion and bone pretrainings, class scores fused with weights."""
    from halp_bench.config import resolve_preset
    from halp_bench.ensemble import EnsembleSpec, run_ensemble
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    spec = EnsembleSpec(method=method, dataset=dataset, split=split, weights=weights, seeds=_parse_seeds(seeds),
                        preset=resolve_preset(preset, dataset), overrides=list(overrides),
                        device=device, out=out, show_progress=not no_progress, deterministic=deterministic, threads=threads)
    cells = run_ensemble(spec, say=console.print)
    _print_cells(cells, f"cells: {method} 3s on {dataset}{'/' + split if split else ''}")
    _print_tables(read_rows(out / RESULTS_FILE), out, ("md", "tex"), shown=("md",))


def _suite_specs(name: str, spec) -> list:
    """The suite's entries over `spec`; options given on the command line win over the suite's."""
    from click.core import ParameterSource

    from halp_bench.suites import suite_specs

    ctx = click.get_current_context()
    given = {p for p in ("methods", "dataset", "split", "protocols", "transfer_from", "preset", "seed", "seeds")
             if ctx.get_parameter_source(p) is not ParameterSource.DEFAULT}
    clash = sorted(given & {"dataset", "split", "protocols", "transfer_from"})
    if clash:
        raise click.UsageError(f"--suite sets {', '.join('--' + c.replace('_', '-') for c in clash)}; leave them out")
    keep = tuple(k for k in ("methods", "preset") if k in given) + (("seeds",) if given & {"seed", "seeds"} else ())
    return suite_specs(name, spec, keep)


def _print_cells(outcomes: list, title: str) -> None:
    summary = Table(title=title)
    for column in ("method", "seed", "protocol", "status", "top1", "detail"):
        summary.add_column(column)
    for o in outcomes:
        style = {"ran": "green", "skipped": "dim", "failed": "red"}[o.status]
        top1s = [f"{v:.1f}" for k, v in o.metrics.items() if k == "top1" or k.startswith("top1@")]
        summary.add_row(o.method, str(o.seed), o.protocol, f"[{style}]{o.status}[/{style}]", " / ".join(top1s), o.detail)
    console.print(summary)


def _print_tables(rows: list, out: Path, formats: tuple[str, ...], names: tuple[str, ...] | None = None,
                  with_paper: bool = False, shown: tuple[str, ...] | None = None) -> None:
    """Build the tables, write them to <out>/tables/ in `formats` and print those in `shown` (default: all)."""
    from halp_bench.results.tables import TABLES, build_tables, check_formats, write_tables

    check_formats(formats)
    tables = build_tables(rows, names or TABLES, with_paper)
    if not tables:
        click.echo("(no results for these tables)")
        return
    written = write_tables(tables, out / "tables", formats)
    for path, text in written:
        if shown is None or path.suffix[1:] in shown:
            click.echo("\n" + text)
    console.print(f"[dim]tables written to {out / 'tables'}: {', '.join(p.name for p, _ in written)}[/dim]")


@cli.command("config")
@click.option("--methods", help="Comma-separated method names (default: those of a bare run).")
@click.option("--preset", type=click.Choice(["auto", "cpu", "paper", "official"]), default="auto", show_default=True,
              help="As for `run`; auto: cpu for the synthetic data, paper otherwise.")
@click.option("--dataset", default="synthetic", show_default=True, help="Registered dataset name (or path), as for `run`.")
@click.option("--split", default=None, help="Named split; give it for the identities a run would have (a run names the default split).")
@click.option("--seed", type=int, default=0, show_default=True, help="The seed (part of the pretraining identity).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, as for `run` (repeatable).")
@click.option("--from-row", "from_row", default=None, metavar="RESULTS.jsonl:N",
              help="List the recipe of the N-th row (from 1) of a results file instead: its preset, data, seed and, as --set, "
                   "every setting that differs from its preset's recipe.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per method: values, sources and identities.")
def config_command(methods, preset, dataset, split, seed, overrides, from_row, as_json) -> None:
    """Print each method's fully resolved recipe: every setting, where its value came from (default,
    preset, the method's run_defaults, --set) and the identities of its pretraining and cells."""
    import json

    from halp_bench.recipe import read_row, recipe_from_row, resolve_recipe

    if from_row:
        recipes = [recipe_from_row(read_row(from_row))]
    else:
        from halp_bench.config import resolve_preset
        from halp_bench.methods.base import default_methods
        from halp_bench.registry import load_plugins

        load_plugins()
        preset = resolve_preset(preset, dataset)
        recipes = [resolve_recipe(name, preset, dataset, split, seed, list(overrides)) for name in _split_list(methods) or default_methods()]
    for recipe in recipes:
        click.echo(json.dumps(recipe.to_dict(), sort_keys=True) if as_json else "\n".join(recipe.lines()) + "\n")


@cli.command("list")
@click.option("--settings/--no-settings", "show_settings", default=True, show_default=True,
              help="Show each method's and encoder's settings (the --set method.* / encoder.* keys) with their paper values "
                   "and what each allows.")
def list_plugins(show_settings: bool) -> None:
    """Registered methods (with their settings), encoders (with theirs), datasets, protocols, layouts and presets."""
    import dataclasses

    from halp_bench.config import PRESET_DESCRIPTIONS, AugmentSettings
    from halp_bench.registry import DATASETS, ENCODERS, LAYOUTS, METHODS, PROTOCOLS, load_plugins

    load_plugins()

    def settings_line(settings_class: type, section: str) -> str:
        values = [f"{f.name}={getattr(settings_class(), f.name)}{allowed_words(f, settings_class)}"
                  for f in dataclasses.fields(settings_class) if f.name != "name"]
        return f"\n[dim]{section}.*: {', '.join(values) or '(none)'}[/dim]" if show_settings else ""

    for registry in (METHODS, ENCODERS, DATASETS, PROTOCOLS, LAYOUTS):
        table = Table(title=f"{registry.kind}s", title_justify="left", show_header=False)
        for entry in registry.entries():
            extra = ""
            if registry is METHODS:
                extra = _method_declarations(entry.name)
                extra += settings_line(entry.factory.settings_class, "method")
                if entry.factory.augment_class is not AugmentSettings:  # views of its own
                    extra += settings_line(entry.factory.augment_class, "augment")
            elif registry is ENCODERS:
                extra = settings_line(entry.factory.settings_class, "encoder")
            table.add_row(f"[bold]{entry.name}[/bold]", entry.description + extra)
        console.print(table)
    table = Table(title="presets", title_justify="left", show_header=False)
    for name, description in PRESET_DESCRIPTIONS.items():
        table.add_row(f"[bold]{name}[/bold]", description)
    console.print(table)


def _method_declarations(name: str) -> str:
    """The `list` lines of a method's declarations: family, base, encoder, where it runs, run_defaults."""
    from halp_bench.declarations import FAMILIES, method_overview

    seen = method_overview(name)
    declaration = seen["declaration"]
    encoders = seen["encoders"]
    encoder = encoders.get("paper", "")
    others = ", ".join(f"{preset}: {name}" for preset, name in encoders.items() if name != encoder)
    runs = (["bare run"] if seen["bare_run"] else ["by name"]) + [f"--suite {suite}" for suite in seen["suites"]]
    parts = [f"family {declaration.family} ({FAMILIES.get(declaration.family, 'declared by the plugin')})",
             f"base {declaration.compared_to or '–'}", f"encoder {encoder}" + (f" ({others})" if others else ""),
             "runs: " + ", ".join(runs)]
    lines = "\n[dim]" + escape(" · ".join(parts)) + (f"; {escape(declaration.citation)}" if declaration.citation else "") + "[/dim]"
    defaults = "; ".join(f"{key}: " + ", ".join(f"{k}={v}" for k, v in values.items()) for key, values in seen["run_defaults"].items())
    return lines + (f"\n[dim]run_defaults: {escape(defaults)}[/dim]" if defaults else "")


def _results_rows(out: Path, results_files: tuple[Path, ...]) -> list[tuple[ResultRow, Path]]:
    """(row, its results file) for every row of the given files (default <out>/results.jsonl)."""
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    paths = list(results_files) or [out / RESULTS_FILE]
    for path in paths:
        if not path.exists():
            raise HalpBenchError(f"{path}: no results file; run `halp-bench run --out {out}` first")
    return [(row, path) for path in paths for row in read_rows(path)]


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Output directory of `run`: reads <out>/results.jsonl (unless --results) and writes <out>/tables/<table>.<format>.")
@click.option("--results", "results_files", multiple=True, type=click.Path(path_type=Path),
              help="A results.jsonl file; repeat to combine several (default: <out>/results.jsonl).")
@click.option("--tables", "table_names", default=None,
              help="Comma-separated: linear (Table 1), knn (Table 2), transfer (Table 3), cost (Table 4), semi, ablations, "
                   "differences (default: every table with something to show).")
@click.option("--format", "formats", default="md,tex", show_default=True,
              help="Comma-separated: md (Markdown) and/or tex (LaTeX, booktabs: needs \\usepackage{booktabs}).")
@click.option("--with-paper", is_flag=True, help="Add the paper's published numbers as rows '<method> (paper)'; '–' where it has none.")
def table(out: Path, results_files: tuple[Path, ...], table_names: str | None, formats: str, with_paper: bool) -> None:
    """Paper-style tables of the stored results, printed and written to <out>/tables/.

    Rows are methods in their declared families and order (variants labelled by the settings their
    ablations vary, e.g. λ); a cell is top-1 % of the final epoch, the mean ± std over seeds, the
    best of our rows in bold. † marks the best test accuracy over evaluations (--set
    eval.report=best, the official code's reporting), with a footnote. Differences and cost ratios
    pair a method with its base only under one comparison key (same data, encoder, protocol
    settings; docs/tables.md). Each table ends with the settings that make its numbers comparable.
    Reads the stored rows only: no plugin needs to be installed.
    """
    rows = [row for row, _ in _results_rows(out, results_files)]
    names = _split_list(table_names, "--tables")
    _print_tables(rows, out, tuple(_split_list(formats, "--format") or ()), tuple(names) if names else None, with_paper)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Output directory of `run`: runs are found through <out>/results.jsonl; plots go to <out>/plots/.")
@click.option("--results", "results_files", multiple=True, type=click.Path(path_type=Path),
              help="A results.jsonl file; repeat to combine several (default: <out>/results.jsonl).")
@click.option("--methods", default=None, help="Only these methods (comma-separated; default: all; with --tsne also the panels' order).")
@click.option("--format", "formats", default="png", show_default=True, help="Comma-separated: png and/or svg.")
@click.option("--tsne", is_flag=True, help="Instead of curves: a t-SNE of the evaluation features (those kNN uses: the encoder of "
              "each stored kNN/linear run, centre crop, L2-normalised) of the test split, one panel per method, coloured by "
              "class; one figure per dataset split, <out>/plots/tsne_<dataset>_<split>.<format>.")
@click.option("--seed", type=int, default=None, help="--tsne: the runs of this seed (default: the smallest stored).")
@click.option("--samples", type=click.IntRange(min=2), default=2000, show_default=True,
              help="--tsne: test samples to embed; a larger test set is subsampled at random (the same samples for every method).")
@click.option("--sample-seed", type=int, default=0, show_default=True, help="--tsne: seed of that subsample and of the t-SNE itself.")
@click.option("--perplexity", type=click.FloatRange(min=0, min_open=True, max=1e6), default=30.0,
              show_default=True, help="--tsne: t-SNE perplexity (the same for every panel).")
@click.option("--device", default="auto", show_default=True, help="--tsne: where features are computed: auto | cpu | cuda | cuda:N | mps.")
def plot(out: Path, results_files: tuple[Path, ...], methods: str | None, formats: str, tsne: bool, seed: int | None, samples: int,
         sample_seed: int, perplexity: float, device: str) -> None:
    """Training curves of the runs behind the stored results: pretraining loss per epoch
    (runs/<run>/log.csv) and kNN top-1 during pretraining (monitor.csv, with --set
    eval.monitor_every=N on `run`); or, with --tsne, a t-SNE map of their features.
    Needs matplotlib: pip install 'halp-bench[plot]'."""
    from halp_bench.results.plots import check_formats, find_runs, plot_curves

    rows = _results_rows(out, results_files)
    chosen_formats = tuple(_split_list(formats, "--format") or ())
    chosen_methods = _split_list(methods, "--methods")
    check_formats(chosen_formats)
    if tsne:
        from halp_bench.engine.device import resolve_device
        from halp_bench.registry import load_plugins
        from halp_bench.results.tsne import plot_tsne
        from halp_bench.visualize import tsne_figures

        load_plugins()
        for figure in tsne_figures(rows, chosen_methods, seed, samples, sample_seed, perplexity, resolve_device(device), say=console.print):
            for note in figure.notes:
                err_console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False)
            stem = out / "plots" / f"tsne_{figure.name}"
            for path in plot_tsne(figure.panels, stem, chosen_formats, perplexity, sample_seed, figure.title, figure.num_classes):
                click.echo(str(path))
        return
    check_stored_methods(chosen_methods, [row for row, _ in rows])
    runs = find_runs(rows, chosen_methods)
    if not runs:
        raise HalpBenchError(f"no training logs found for the runs in the results of {out}")
    for path in plot_curves(runs, out / "plots" / "curves", chosen_formats):
        click.echo(str(path))


@cli.command()
@click.argument("dataset")
@click.option("--split", default=None, help="Named split (default: the dataset's default).")
@click.option("--part", type=click.Choice(["train", "test"]), default="train", show_default=True, help="Which side of the split.")
@click.option("--index", type=int, default=None, help="Position of the sample within that part (default 0).")
@click.option("--label", type=int, default=None, help="Show the first sample of this class (0-based) instead.")
@click.option("--augmented", is_flag=True, help="Also the two pretraining views --method makes of the sample (its augmentations, "
              "the preset's settings and --set augment.*), next to it.")
@click.option("--method", "method_name", default="moco", show_default=True, help="Whose views --augmented shows (see `halp-bench list`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the augmentations drawn for --augmented.")
@click.option("--preset", type=click.Choice(["auto", "cpu", "paper", "official"]), default="auto", show_default=True,
              help="Settings of the views (frames, augmentations): auto = cpu for the synthetic data, paper otherwise.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. --set data.normalize=agcn to see a normalisation, --set augment.shear_amplitude=1 (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "gif"]), default="png", show_default=True,
              help="png/svg: a strip of frames; gif: an animation.")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Frames drawn: the strip's columns (default 8) or the animation's steps "
              "(default every frame of the longest clip, at most 100).")
@click.option("--fps", type=click.IntRange(min=1, max=100), default=15, show_default=True, help="Animation speed (gif).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Output directory: writes <out>/plots/show_<dataset>_<split>_<part><index>[_<normalize>][_augmented].<format>.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live (default: $HALP_BENCH_DATA or ./data).")
def show(dataset, split, part, index, label, augmented, method_name, seed, preset, overrides, fmt, frames, fps, out, data_root) -> None:
    """Draw one sample of DATASET (a registered name, a prepared directory, an imported file or an
    .npz) as a strip of frames or an animated GIF: the bones of its layout, every person, equal
    axes, frame numbers. Needs matplotlib: pip install 'halp-bench[plot]'."""
    from halp_bench.config import make_config
    from halp_bench.results.skeleton_drawing import draw_clips
    from halp_bench.runner import safe_name
    from halp_bench.visualize import show_sample

    if index is not None and label is not None:
        raise click.UsageError("give --index or --label, not both")
    refuse_inapplicable("show", overrides)
    from halp_bench.config import resolve_preset

    preset = resolve_preset(preset, dataset)
    settings = [*overrides, f"data.dataset={dataset}", *([f"data.split={split}"] if split else []),
                *([f"data.data_root={data_root}"] if data_root else []), "device=cpu"]
    cfg = make_config(preset, settings, method=method_name)
    sample = show_sample(cfg, part, index, label, augmented, method_name, seed)
    which = f"class{label}" if label is not None else str(index or 0)
    name = f"show_{safe_name(dataset)}_{safe_name(sample.split)}_{part}{which}" + (f"_{cfg.data.normalize}" if cfg.data.normalize != "none" else "")
    path = draw_clips(sample.title, sample.layout, sample.clips, out / "plots" / (name + ("_augmented" if augmented else "")), fmt, frames, fps)
    click.echo(str(path))


@cli.command()
@click.argument("dataset", type=click.Choice(["ntu60", "ntu120", "pku2"]))
@click.option("--raw", "raw_dirs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder of raw files (repeatable: NTU-120 ships as two archives). NTU: .skeleton files + the official missing-skeleton list; PKU-MMD II: skeleton/, label/, cross_subject_v2.txt, cross_view_v2.txt.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output directory, e.g. data/ntu60 (see --data-root of `run`).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Parallel worker processes (default: this process's share of the "
              "cores, at most 8: all of them unless other halp-bench processes run on the machine).")
@click.option("--normalize", "agcn_at_prepare", is_flag=True, help="Store the agcn pipeline's output (two most active bodies, "
              "2s-AGCN pre-normalisation) instead of raw coordinates with every body; only data.pipeline=agcn can use it.")
@click.option("--no-normalize", is_flag=True, hidden=True, help="Raw coordinates (the default now; kept for old scripts).")
@click.option("--max-frames", type=click.IntRange(min=1), default=300, show_default=True, help="Frames kept per sample (longer ones are cut).")
@click.option("--force", is_flag=True, help="Start over, or write into a non-empty directory that is not a prepared one.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def prepare(dataset, raw_dirs, out, workers, agcn_at_prepare, no_normalize, max_frames, force, no_progress) -> None:
    """Raw NTU RGB+D 60/120 or PKU-MMD II files -> a memory-mapped prepared dataset; rerun to resume."""
    from halp_bench.common.cpu_share import fair_share, share_cpus
    from halp_bench.datasets.raw.prepare import prepare_dataset

    workers = workers or min(fair_share(), 8)
    with share_cpus(workers):  # other halp-bench processes count our workers' cores
        summary = prepare_dataset(
            dataset, list(raw_dirs), out, workers=workers, normalize=agcn_at_prepare and not no_normalize,
            max_frames=max_frames, progress=not no_progress, force=force,
        )
    splits = Table(title=f"{summary.dataset} splits (train / test)")
    for column in ("split", "ours", "published", "match"):
        splits.add_column(column)
    for name, (train, test) in summary.splits.items():
        published = summary.published.get(name)
        match = "" if published is None else ("[green]yes[/green]" if published == (train, test) else "[yellow]no[/yellow]")
        splits.add_row(name, f"{train:,} / {test:,}", f"{published[0]:,} / {published[1]:,}" if published else "-", match)
    console.print(splits)
    if summary.already_complete:
        console.print(f"{out}: already prepared from these files with these options; nothing to do (--force redoes it)")
        return
    console.print(
        f"{summary.samples:,} samples in {out} ({'agcn pipeline applied' if summary.normalized else 'raw coordinates, every body; data.pipeline applies at load'}); "
        f"read {summary.read:,} files, resumed {summary.resumed:,} samples, {summary.skipped_missing:,} skipped as on "
        f"the official missing list, {summary.truncated:,} cut to {max_frames} frames, {len(summary.failed):,} failed; "
        f"{summary.seconds:.1f}s ({summary.samples_per_second:.0f} samples/s)"
    )
    for file, reason in summary.failed:
        err_console.print(f"[red]failed: {escape(reason)}[/red]" if file in reason else f"[red]failed: {escape(file)}: {escape(reason)}[/red]",
                          highlight=False)
    if summary.failed:
        err_console.print("[red]the failed files are left out of the dataset; fix them and run prepare with --force[/red]")
        sys.exit(1)


@cli.command("data")
@click.argument("dataset")
@click.option("--split", default=None, help="Report this split only (default: every split of the dataset).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (machine-readable) instead of text.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live (default: $HALP_BENCH_DATA or ./data).")
@click.option("--recheck", is_flag=True, help="Scan the arrays again instead of reading their cached scan (and replace the cache).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar of a scan.")
def data(dataset: str, split: str | None, as_json: bool, data_root: Path | None, recheck: bool, no_progress: bool) -> None:
    """What the harness sees in DATASET (a registered name or a path, as for `run --dataset`):
    samples per split part beside the published sizes, classes and their counts, bodies, joints,
    layout, frame lengths, coordinate ranges, fingerprints and every data check. Exit code 2 when
    a check refuses the data (the report is printed first)."""
    import json

    from halp_bench.config import DataConfig
    from halp_bench.datasets.catalog import load_dataset
    from halp_bench.datasets.quality.checks import Finding, refuse
    from halp_bench.datasets.quality.report import data_report, format_report
    from halp_bench.registry import load_plugins

    load_plugins()
    progress = not (no_progress or as_json)
    loaded = load_dataset(DataConfig(dataset=dataset, data_root=str(data_root or "")), check=False, progress=progress and not recheck)
    if recheck:
        loaded.scan(progress=progress, refresh=True)
    report = data_report(loaded, [split] if split else None)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report), nl=not as_json)
    refuse(loaded, [Finding(c["check"], c["status"], c["message"], c["split"]) for c in report["checks"]])


def _show_warning(message, category, filename, lineno, file=None, line=None, shown: set[str] | None = None) -> None:
    """halp-bench's own warnings (errors.HalpBenchWarning) as one yellow line each, once per
    command; any other warning as Python shows it."""
    if not issubclass(category, HalpBenchWarning):
        return _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)
    text = str(message)
    if shown is not None and text in shown:
        return None
    if shown is not None:
        shown.add(text)
    _warn(text)
    return None


_PYTHON_SHOWWARNING = warnings.showwarning


def main() -> None:
    """Entry point: user errors become one red line and exit code 2 (tracebacks with --debug)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", HalpBenchWarning)
        shown: set[str] = set()
        warnings.showwarning = lambda *args, **kwargs: _show_warning(*args, **kwargs, shown=shown)
        _main()


def _main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # one line, like our own errors, with where to look
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err_console.print(f"[red]error: {escape(exc.format_message() + hint)}[/red]", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except HalpBenchError as exc:
        if debug:
            raise
        err_console.print(f"[red]error: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
