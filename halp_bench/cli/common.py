"""What every command shares: the console, option parsing helpers, the command group, the checked
run entries, and printing cells and tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from halp_bench.errors import HalpBenchError
from halp_bench.validation import check_settings

if TYPE_CHECKING:
    from halp_bench.results.row import ResultRow

console = Console()
err_console = Console(stderr=True)


def split_list(value: str | None, option: str | None = None) -> list[str] | None:
    """The comma-separated items of an option; None when it was not given. Given but empty (e.g.
    --methods '') is an error, not the default."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter(f"'{value}': expected at least one comma-separated name", param_hint=f"'{option}'" if option else None)
    return items


def given(option: str) -> bool:
    """Whether the current command's `option` (its parameter name) was given, not defaulted."""
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(option) is not ParameterSource.DEFAULT


def warn(message: str | None) -> None:
    """One yellow line on stderr (nothing for None)."""
    if message:
        err_console.print(f"[yellow]warning: {escape(message)}[/yellow]", highlight=False, soft_wrap=True)


def parse_seeds(value: str) -> list[int]:
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise click.BadParameter(f"'{value}': expected comma-separated integers >= 0, e.g. 0,1,2", param_hint="'--seeds'")
    return seeds


LOGGER_OPTION = click.option(
    "--logger",
    default="csv",
    show_default=True,
    metavar="csv|tensorboard|wandb",
    help="Training logs, comma-separated (e.g. csv,tensorboard): runs/<run>/log.csv is always written; tensorboard writes event "
    "files into the run directories (tensorboard --logdir <out>/runs; pip install 'halp-bench[tensorboard]'); wandb logs to "
    "Weights & Biases under its WANDB_* settings (WANDB_MODE=offline needs no network; pip install 'halp-bench[wandb]'). "
    "Losses, learning rate, epoch time, peak memory and the kNN monitor of every pretraining and protocol cell, under the "
    "run directory's name.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """halp-bench: pretrain skeleton-sequence encoders without labels and compare methods under
    the kNN, linear and transfer protocols, with tables that keep every comparability setting."""
    ctx.obj = {"debug": debug}


def checked_entries(suite: str | None, spec, say) -> list:
    """The run's entries (the suite's, or `spec`), each with its preset resolved ("auto": cpu for
    the synthetic data, paper otherwise), and every entry's settings checked before the first trains."""
    from halp_bench.config import resolve_preset

    entries = suite_specs(suite, spec) if suite else [spec]
    for entry in entries:
        if entry.preset == "auto":
            entry.preset = resolve_preset(entry.preset, entry.dataset)
            say(f"[dim]preset: {entry.preset} (auto for dataset '{entry.dataset}')[/dim]")
    check_settings(entries)
    return entries


def suite_specs(name: str, spec) -> list:
    """The suite's entries over `spec`; options given on the command line win over the suite's."""
    from click.core import ParameterSource

    from halp_bench.suites import suite_specs

    ctx = click.get_current_context()
    given = {
        p
        for p in ("methods", "dataset", "split", "protocols", "transfer_from", "preset", "seed", "seeds")
        if ctx.get_parameter_source(p) is not ParameterSource.DEFAULT
    }
    clash = sorted(given & {"dataset", "split", "protocols", "transfer_from"})
    if clash:
        raise click.UsageError(f"--suite sets {', '.join('--' + c.replace('_', '-') for c in clash)}; leave them out")
    keep = tuple(k for k in ("methods", "preset") if k in given) + (("seeds",) if given & {"seed", "seeds"} else ())
    return suite_specs(name, spec, keep)


def print_cells(outcomes: list, title: str) -> None:
    summary = Table(title=title)
    for column in ("method", "seed", "protocol", "status", "top1", "detail"):
        summary.add_column(column)
    for o in outcomes:
        style = {"ran": "green", "skipped": "dim", "failed": "red"}[o.status]
        top1s = [f"{v:.1f}" for k, v in o.metrics.items() if k == "top1" or k.startswith("top1@")]
        summary.add_row(o.method, str(o.seed), o.protocol, f"[{style}]{o.status}[/{style}]", " / ".join(top1s), o.detail)
    console.print(summary)


def print_tables(
    rows: list, out: Path, formats: tuple[str, ...], names: tuple[str, ...] | None = None, with_paper: bool = False, shown: tuple[str, ...] | None = None
) -> None:
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


def results_rows(out: Path, results_files: tuple[Path, ...]) -> list[tuple[ResultRow, Path]]:
    """(row, its results file) for every row of the given files (default <out>/results.jsonl)."""
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    paths = list(results_files) or [out / RESULTS_FILE]
    for path in paths:
        if not path.exists():
            raise HalpBenchError(f"{path}: no results file; run `halp-bench run --out {out}` first")
    return [(row, path) for path in paths for row in read_rows(path)]
