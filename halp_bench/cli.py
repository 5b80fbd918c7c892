"""The `halp-bench` command line: parse, call the library, print with rich. Nothing else here."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from halp_bench.errors import HalpBenchError

console = Console()
err_console = Console(stderr=True)


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def _parse_seeds(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"'{value}': expected comma-separated integers, e.g. 0,1,2") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """halp-bench: pretrain skeleton-sequence encoders without labels and compare methods under
    the kNN, linear and transfer protocols, with tables that keep every comparability setting."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.option("--methods", help="Comma-separated method names (default: every registered method; see `halp-bench list`).")
@click.option("--dataset", default="synthetic", show_default=True, help="Registered dataset name.")
@click.option("--split", default=None, help="Named split (default: the dataset's default, e.g. xsub).")
@click.option("--protocols", help="Comma-separated protocols (default: all, e.g. knn,linear).")
@click.option("--preset", type=click.Choice(["auto", "cpu", "paper"]), default="auto", show_default=True,
              help="Recipe: `paper` (the published one) or `cpu` (minutes on a laptop). `auto`: cpu for the built-in synthetic data, paper otherwise.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, e.g. --set method.temperature=0.1 (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps.")
@click.option("--seed", type=int, default=None, help="One seed (default 0).")
@click.option("--seeds", default=None, help="Several seeds, e.g. 0,1,2 (each repeats every cell).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Output directory: results.jsonl, runs/, tables/.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live (default: $HALP_BENCH_DATA or ./data).")
@click.option("--force", is_flag=True, help="Redo cells already in the results store (and retrain).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(methods, dataset, split, protocols, preset, overrides, device, seed, seeds, out, data_root, force, no_progress) -> None:
    """Pretrain each method once, evaluate it with every protocol, store rows, print the table."""
    from halp_bench.results.store import RESULTS_FILE, load_results
    from halp_bench.results.tables import markdown_table
    from halp_bench.runner import RunSpec, run_grid

    if seed is not None and seeds is not None:
        raise click.UsageError("give --seed or --seeds, not both")
    seed_list = _parse_seeds(seeds) if seeds else [seed if seed is not None else 0]
    if preset == "auto":
        preset = "cpu" if dataset.startswith("synthetic") else "paper"
        console.print(f"[dim]preset: {preset} (auto for dataset '{dataset}')[/dim]")
    if data_root is not None:
        overrides = (*overrides, f"data.data_root={data_root}")
    spec = RunSpec(
        methods=_split_list(methods), dataset=dataset, split=split, protocols=_split_list(protocols), preset=preset,
        overrides=list(overrides), seeds=seed_list, device=device, out=out, force=force, show_progress=not no_progress,
    )
    outcomes = run_grid(spec, say=lambda msg: console.print(msg))
    summary = Table(title="cells")
    for column in ("method", "seed", "protocol", "status", "top1", "detail"):
        summary.add_column(column)
    for o in outcomes:
        style = {"ran": "green", "skipped": "dim", "failed": "red"}[o.status]
        top1 = f"{o.metrics['top1']:.1f}" if "top1" in o.metrics else ""
        summary.add_row(o.method, str(o.seed), o.protocol, f"[{style}]{o.status}[/{style}]", top1, o.detail)
    console.print(summary)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ran", "skipped", "failed")}
    console.print(f"{counts['ran']} ran, {counts['skipped']} skipped, {counts['failed']} failed")
    click.echo("\n" + markdown_table(load_results(out / RESULTS_FILE)))
    if counts["failed"]:
        sys.exit(1)


@cli.command("list")
def list_plugins() -> None:
    """Registered methods, encoders, datasets, protocols, layouts and presets."""
    from halp_bench.config import PRESET_DESCRIPTIONS
    from halp_bench.registry import DATASETS, ENCODERS, LAYOUTS, METHODS, PROTOCOLS, load_plugins

    load_plugins()
    for registry in (METHODS, ENCODERS, DATASETS, PROTOCOLS, LAYOUTS):
        table = Table(title=f"{registry.kind}s", title_justify="left", show_header=False)
        for entry in registry.entries():
            table.add_row(f"[bold]{entry.name}[/bold]", entry.description)
        console.print(table)
    table = Table(title="presets", title_justify="left", show_header=False)
    for name, description in PRESET_DESCRIPTIONS.items():
        table.add_row(f"[bold]{name}[/bold]", description)
    console.print(table)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Output directory of `run`.")
@click.option("--results", "results_file", type=click.Path(path_type=Path), default=None, help="A results.jsonl file (default: <out>/results.jsonl).")
def table(out: Path, results_file: Path | None) -> None:
    """Print a Markdown table of the stored results."""
    from halp_bench.results.store import RESULTS_FILE, load_results
    from halp_bench.results.tables import markdown_table

    path = results_file or out / RESULTS_FILE
    if not path.exists():
        raise HalpBenchError(f"{path}: no results file; run `halp-bench run --out {out}` first")
    click.echo(markdown_table(load_results(path)))


@cli.command()
@click.argument("dataset", type=click.Choice(["ntu60", "ntu120", "pku2"]))
@click.option("--raw", "raw_dirs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder of raw files (repeatable: NTU-120 ships as two archives). NTU: .skeleton files + the official missing-skeleton list; PKU-MMD II: skeleton/, label/, cross_subject_v2.txt, cross_view_v2.txt.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output directory, e.g. data/ntu60 (see --data-root of `run`).")
@click.option("--workers", type=int, default=None, help="Parallel worker processes (default: CPU count, at most 8).")
@click.option("--no-normalize", is_flag=True, help="Skip the official 2s-AGCN pre-normalisation (centre, rotate).")
@click.option("--max-frames", type=int, default=300, show_default=True, help="Frames kept per sample (longer ones are cut).")
@click.option("--force", is_flag=True, help="Start over, or write into a non-empty directory that is not a prepared one.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def prepare(dataset, raw_dirs, out, workers, no_normalize, max_frames, force, no_progress) -> None:
    """Raw NTU RGB+D 60/120 or PKU-MMD II files -> a memory-mapped prepared dataset; rerun to resume."""
    import os

    from halp_bench.datasets.prepare import prepare_dataset

    summary = prepare_dataset(
        dataset, list(raw_dirs), out, workers=workers or min(os.cpu_count() or 1, 8), normalize=not no_normalize,
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
        f"{summary.samples:,} samples in {out} ({'normalised' if summary.normalized else 'not normalised'}); "
        f"read {summary.read:,} files, resumed {summary.resumed:,} samples, {summary.skipped_missing:,} skipped as on "
        f"the official missing list, {summary.truncated:,} cut to {max_frames} frames, {len(summary.failed):,} failed; "
        f"{summary.seconds:.1f}s ({summary.samples_per_second:.0f} samples/s)"
    )
    for file, reason in summary.failed:
        err_console.print(f"[red]failed: {reason}[/red]" if file in reason else f"[red]failed: {file}: {reason}[/red]", highlight=False)
    if summary.failed:
        err_console.print("[red]the failed files are left out of the dataset; fix them and run prepare with --force[/red]")
        sys.exit(1)


def main() -> None:
    """Entry point: user errors become one red line and exit code 2 (tracebacks with --debug)."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except HalpBenchError as exc:
        if debug:
            raise
        err_console.print(f"[red]error: {exc}[/red]", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
