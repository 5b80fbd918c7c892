"""Commands that run the grid: `run` (in this process or through a launcher) and `status`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from halp_bench.cli.common import LOGGER_OPTION, checked_entries, cli, console, err_console, given, parse_seeds, print_cells, print_tables, split_list, warn
from halp_bench.errors import ConfigError, DataError
from halp_bench.validation import device_setting, refuse_inapplicable, threads_warning

if TYPE_CHECKING:
    pass


LAUNCH_OPTIONS = (
    "launcher",
    "partition",
    "account",
    "qos",
    "constraint",
    "time",
    "gpus",
    "tasks",
    "cpus",
    "mem",
    "max_jobs",
    "signal_delay_s",
    "max_requeues",
    "sbatch",
    "wait",
)  # what _launch_options adds to `run`


def _launch_options(command):
    """`run`'s launcher options (orchestration/launch/): given as `**launch` to the command. Unset values
    come from HALP_BENCH_SLURM_<NAME> or the [slurm] table of ~/.config/halp-bench/launcher.toml."""
    options = [
        click.option(
            "--launcher",
            type=click.Choice(["local", "slurm"]),
            default=None,
            help="Run each pretraining (method x seed) with its protocol cells as one submitit job: `local` (processes on "
            "this machine, at most --max-jobs at once; waits for them) or `slurm` (a job array; returns once "
            "submitted unless --wait). Default: everything in this process.",
        ),
        click.option("--partition", default=None, help="Slurm partition (env HALP_BENCH_SLURM_PARTITION; config key partition)."),
        click.option("--account", default=None, help="Slurm account to charge."),
        click.option("--qos", default=None, help="Slurm quality of service."),
        click.option("--constraint", default=None, help="Slurm node constraint (features), e.g. a100."),
        click.option(
            "--time", default=None, help="Time limit per job: minutes or [D-]HH:MM[:SS] (default 24:00:00); a job reaching it checkpoints and is requeued."
        ),
        click.option("--gpus-per-job", "gpus", type=int, default=None, help="GPUs per job (default 0); more than 1 runs DDP, one task per GPU."),
        click.option(
            "--tasks-per-job",
            "tasks",
            type=int,
            default=None,
            help="Processes per job, each a DDP rank (default: one per GPU, at least one; CPU ranks use gloo).",
        ),
        click.option("--cpus-per-task", "cpus", type=int, default=None, help="CPUs per task (default 4)."),
        click.option("--mem", default=None, help="Memory per job, e.g. 64G (default: the partition's)."),
        click.option("--max-jobs", type=int, default=None, help="Jobs running at once (default 64): Slurm's array throttle, or local processes."),
        click.option(
            "--signal-delay",
            "signal_delay_s",
            type=int,
            default=None,
            help="Seconds before the time limit at which a job is signalled to requeue itself (default 120).",
        ),
        click.option("--max-requeues", type=int, default=None, help="Requeues after reaching the time limit (default 10; preemption is not counted)."),
        click.option("--sbatch", multiple=True, metavar="KEY=VALUE", help="An extra sbatch line, e.g. --sbatch mail-type=END (repeatable)."),
        click.option("--wait", is_flag=True, help="With --launcher slurm: wait for the jobs, then print the cells and tables."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@_launch_options
@click.option(
    "--methods",
    help="Comma-separated method names (default: the paper's own rows and every plugin; the field's "
    "methods, e.g. skeletonclr, run when named or with --suite field; see `halp-bench list`).",
)
@click.option("--dataset", default="synthetic", show_default=True, help="Registered dataset name.")
@click.option("--split", default=None, help="Named split (default: the dataset's default, e.g. xsub).")
@click.option("--protocols", help="Comma-separated protocols (default: knn,linear,transfer; semi only when named).")
@click.option(
    "--transfer-from",
    default=None,
    metavar="SOURCE[:SPLIT]",
    help="Transfer source: pretrain on SOURCE (or reuse its checkpoint), fine-tune on --dataset. Without it, "
    "synthetic transfers to synthetic-target and ntu60/ntu120 to pku2; other datasets skip transfer.",
)
@click.option(
    "--suite",
    default=None,
    help="Run every entry of a named suite (e.g. paper-table1, synthetic-all; an unknown "
    "name lists them) or of a suite .json file; the suite sets datasets, splits and protocols.",
)
@click.option(
    "--preset",
    type=click.Choice(["auto", "cpu", "paper", "official"]),
    default="auto",
    show_default=True,
    help="Recipe: `paper` (the paper's text), `official` (the authors' code as it produced the published tables: per-frame "
    "BiGRU, their scripts' values per method and dataset, best-of-test reporting) or `cpu` (minutes on a laptop). "
    "`auto`: cpu for the built-in synthetic data, paper otherwise.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, e.g. --set method.temperature=0.1 (repeatable).")
@click.option(
    "--common-protocol",
    is_flag=True,
    help="Evaluate every method under the preset's protocol settings, not each "
    "method's own (e.g. the ST-GCN family's linear probe at lr 3.0, 100 epochs): --set eval.protocol=common.",
)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps.")
@click.option(
    "--precision",
    type=click.Choice(["32", "bf16", "16-mixed"]),
    default=None,
    help="Pretraining precision (default 32): bf16 autocast (CPU and GPU) or 16-mixed (float16 with a gradient "
    "scaler, CUDA only); losses and hallucination stay in float32. Part of the settings: its cells are separate.",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="One seed (default 0).")
@click.option("--seeds", default=None, help="Several seeds, e.g. 0,1,2 (each repeats every cell).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Output directory: results.jsonl, runs/, tables/.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live (default: $HALP_BENCH_DATA or ./data).")
@click.option("--force", is_flag=True, help="Redo cells already in the results store (and retrain).")
@click.option(
    "--deterministic",
    is_flag=True,
    help="Deterministic kernels (and CUBLAS_WORKSPACE_CONFIG on CUDA): the same seed on the same "
    "machine gives identical results rows. The CPU thread count stays fixed for the whole run whatever else runs, and a resumed "
    "run takes the count its checkpoint was made with (docs/checks.md). May be slower.",
)
@click.option(
    "--compile",
    "compile_encoders",
    is_flag=True,
    help="torch.compile the encoders while pretraining (CPU needs a C++ compiler). The first step compiles (about a minute "
    "at the cpu preset's size, several at the paper's; reported apart from the epoch times); the results are "
    "those of the eager code to float rounding.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: this process's fair share of the "
    "cores, re-checked every second: all of them alone, half each beside another halp-bench run; fixed for --deterministic).",
)
@LOGGER_OPTION
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(**options: Any) -> None:
    """Pretrain each method once, evaluate it with every protocol, store rows, print the tables.

    Every method is pretrained once per (dataset, split, preset, seed, pretraining settings), in
    <out>/runs/, and reused by every protocol and by later runs; cells already in
    <out>/results.jsonl are skipped (--force redoes them). Transfer pretrains on a source and
    fine-tunes on a target (see --transfer-from); its rows have the target as dataset and the
    source in `transfer_from`. The tables are printed and written to <out>/tables/.
    Under torchrun every process trains its share of each global batch; rank 0 alone prints and writes.
    With --launcher each pretraining and its cells is one job (docs/cluster.md); `halp-bench status` follows them.
    """
    launch = {name: options.pop(name) for name in LAUNCH_OPTIONS}
    suite = options.pop("suite")
    spec, main = _run_spec(options)
    if launch["launcher"] is not None:
        return _run_launched(spec, suite, launch)
    _run_in_process(spec, suite, spec.out, main)


def _run_spec(o: dict[str, Any]) -> tuple[Any, bool]:
    """The grid `run`'s options describe (runner.RunSpec), each option checked, and whether this is
    the main process (which alone prints)."""
    from halp_bench.common.distributed import is_main_process
    from halp_bench.common.loggers import parse_loggers
    from halp_bench.orchestration.grid import RunSpec
    from halp_bench.orchestration.launch.plan import unique

    if o["seed"] is not None and o["seeds"] is not None:
        raise click.UsageError("give --seed or --seeds, not both")
    loggers = parse_loggers(o["logger"])
    seed_list = parse_seeds(o["seeds"]) if o["seeds"] is not None else [o["seed"] if o["seed"] is not None else 0]
    refuse_inapplicable("run", o["overrides"])
    o["device"] = device_setting(o["overrides"], o["device"], given("device"))
    warn(threads_warning(o["threads"]))
    note = (lambda msg: console.print(f"[yellow]{escape(msg)}[/yellow]")) if is_main_process() else (lambda _: None)
    seed_list = unique(seed_list, "seed(s)", note)
    o["methods"] = ",".join(unique(split_list(o["methods"], "--methods"), "method(s)", note)) if o["methods"] is not None else o["methods"]
    o["overrides"] = (
        *o["overrides"],
        *([f"data.data_root={o['data_root']}"] if o["data_root"] is not None else []),
        *([f"precision={o['precision']}"] if o["precision"] is not None else []),
        *(["eval.protocol=common"] if o["common_protocol"] else []),
    )
    main = is_main_process()
    spec = RunSpec(
        methods=split_list(o["methods"], "--methods"),
        dataset=o["dataset"],
        split=o["split"],
        protocols=split_list(o["protocols"], "--protocols"),
        transfer_from=o["transfer_from"],
        preset=o["preset"],
        overrides=list(o["overrides"]),
        seeds=seed_list,
        device=o["device"],
        out=o["out"],
        force=o["force"],
        show_progress=not o["no_progress"],
        deterministic=o["deterministic"],
        compile=o["compile_encoders"],
        threads=o["threads"],
        loggers=loggers,
    )
    return spec, main


def _run_in_process(spec, suite: str | None, out: Path, main: bool) -> None:
    """Every entry's grid in this process (under torchrun: every rank), then the cells, counts and
    tables; failed cells set the exit code (2 when the user can fix them, e.g. a NaN loss)."""
    from halp_bench.orchestration.grid import CellOutcome, run_grid
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    retrained: set[Path] = set()  # a checkpoint shared by suite entries is retrained once under --force
    outcomes = []
    for entry in checked_entries(suite, spec, say=console.print if main else lambda _: None):
        where = f"{entry.dataset}{'/' + entry.split if entry.split else ''}"
        try:
            cells = run_grid(entry, say=lambda msg: console.print(msg) if main else None, retrained=retrained)
        except (ConfigError, DataError) as exc:  # in a suite, e.g. a dataset not prepared: the other entries go on
            if not suite:
                raise
            cells = [CellOutcome("*", s, ",".join(entry.protocols or []), "failed", str(exc)) for s in entry.seeds]
        if main:
            print_cells(cells, f"cells: {where}" + (f" (from {entry.transfer_from})" if entry.transfer_from else ""))
        outcomes += cells
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "skipped", "failed")}
    if main:
        console.print(f"{counts['ran']} ran, {counts['skipped']} skipped, {counts['failed']} failed")
        print_tables(read_rows(out / RESULTS_FILE), out, ("md", "tex"), shown=("md",))
    user_errors = dict.fromkeys(o.detail for o in outcomes if o.status == "failed" and o.user_error)
    for detail in user_errors:  # e.g. a NaN loss: one line each, as for any other user error
        err_console.print(f"[red]error: {escape(detail)}[/red]", highlight=False, soft_wrap=True)
    if counts["failed"]:
        sys.exit(2 if user_errors else 1)


def _run_launched(spec, suite: str | None, launch: dict) -> None:
    """`run --launcher`: submit the units of every entry (halp_bench/orchestration/launch/submit.py); print the
    cells and tables once the jobs are done (local, or slurm with --wait)."""
    from halp_bench.methods.base import default_methods
    from halp_bench.orchestration.cells import CellOutcome
    from halp_bench.orchestration.launch.options import resolve_options
    from halp_bench.orchestration.launch.plan import check_overrides, units_of
    from halp_bench.orchestration.launch.submit import launch as submit_units
    from halp_bench.registry import load_plugins
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    launcher, wait = launch.pop("launcher"), launch.pop("wait")
    options = resolve_options(launch)
    load_plugins()
    outcomes = []
    for entry in checked_entries(suite, spec, say=console.print):  # every entry's settings checked before any job is submitted
        check_overrides(entry, entry.methods or default_methods())
        units = units_of(entry, entry.methods or default_methods())
        outcomes += [CellOutcome(**o) for o in submit_units(entry, units, launcher, options, console.print, wait)]
    if not outcomes:
        return
    print_cells(outcomes, f"cells ({launcher} jobs)")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "skipped", "failed")}
    console.print(f"{counts['ran']} ran, {counts['skipped']} skipped, {counts['failed']} failed")
    print_tables(read_rows(spec.out / RESULTS_FILE), spec.out, ("md", "tex"), shown=("md",))
    if counts["failed"]:
        sys.exit(1)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="The results store to report on.")
@click.option("--json", "as_json", is_flag=True, help="Print the cells and totals as JSON.")
def status(out: Path, as_json: bool) -> None:
    """Every cell of the store's grids: done, running (job, node, epoch, time left), queued, failed
    (error and log file) or skipped, then a one-line total. Reads the store (jobs/, claims/, cells/) and squeue."""
    import json

    from halp_bench.orchestration.launch.status import as_json as status_json
    from halp_bench.orchestration.launch.status import grid_status, totals_line

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
        shown.add_row(
            c.method,
            str(c.seed),
            c.dataset,
            c.protocol,
            f"[{styles[c.state]}]{c.state}[/{styles[c.state]}]",
            c.job or "",
            c.node or "",
            c.epoch or "",
            c.time_left or "",
            escape(detail),
        )
    console.print(shown)
    for c in cells:  # whole, not cut to the table's width: what to read, and where
        if c.state == "failed":
            console.print(
                f"failed: {c.method} seed {c.seed} {c.protocol}: {escape(c.error or '')}" + (f" (log: {escape(c.log)})" if c.log else ""),
                soft_wrap=True,
                highlight=False,
            )
    console.print(totals_line(cells))
