"""Commands about data: `show`, `prepare`, `data`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from halp_bench.cli.common import cli, console, err_console
from halp_bench.validation import refuse_inapplicable

if TYPE_CHECKING:
    pass


@cli.command()
@click.argument("dataset")
@click.option("--split", default=None, help="Named split (default: the dataset's default).")
@click.option("--part", type=click.Choice(["train", "test"]), default="train", show_default=True, help="Which side of the split.")
@click.option("--index", type=int, default=None, help="Position of the sample within that part (default 0).")
@click.option("--label", type=int, default=None, help="Show the first sample of this class (0-based) instead.")
@click.option(
    "--augmented",
    is_flag=True,
    help="Also the two pretraining views --method makes of the sample (its augmentations, the preset's settings and --set augment.*), next to it.",
)
@click.option("--method", "method_name", default="moco", show_default=True, help="Whose views --augmented shows (see `halp-bench list`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the augmentations drawn for --augmented.")
@click.option(
    "--preset",
    type=click.Choice(["auto", "cpu", "paper", "official"]),
    default="auto",
    show_default=True,
    help="Settings of the views (frames, augmentations): auto = cpu for the synthetic data, paper otherwise.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set data.normalize=agcn to see a normalisation, --set augment.shear_amplitude=1 (repeatable).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["png", "svg", "gif"]), default="png", show_default=True, help="png/svg: a strip of frames; gif: an animation."
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=None,
    help="Frames drawn: the strip's columns (default 8) or the animation's steps (default every frame of the longest clip, at most 100).",
)
@click.option("--fps", type=click.IntRange(min=1, max=100), default=15, show_default=True, help="Animation speed (gif).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Output directory: writes <out>/plots/show_<dataset>_<split>_<part><index>[_<normalize>][_augmented].<format>.",
)
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where prepared datasets live (default: $HALP_BENCH_DATA or ./data).")
def show(dataset, split, part, index, label, augmented, method_name, seed, preset, overrides, fmt, frames, fps, out, data_root) -> None:
    """Draw one sample of DATASET (a registered name, a prepared directory, an imported file or an
    .npz) as a strip of frames or an animated GIF: the bones of its layout, every person, equal
    axes, frame numbers. Needs matplotlib: pip install 'halp-bench[plot]'."""
    from halp_bench.config import make_config
    from halp_bench.orchestration.run_dirs import safe_name
    from halp_bench.orchestration.visualize import show_sample
    from halp_bench.results.skeleton_drawing import draw_clips

    if index is not None and label is not None:
        raise click.UsageError("give --index or --label, not both")
    refuse_inapplicable("show", overrides)
    from halp_bench.config import resolve_preset

    preset = resolve_preset(preset, dataset)
    settings = [
        *overrides,
        f"data.dataset={dataset}",
        *([f"data.split={split}"] if split else []),
        *([f"data.data_root={data_root}"] if data_root else []),
        "device=cpu",
    ]
    cfg = make_config(preset, settings, method=method_name)
    sample = show_sample(cfg, part, index, label, augmented, method_name, seed)
    which = f"class{label}" if label is not None else str(index or 0)
    name = f"show_{safe_name(dataset)}_{safe_name(sample.split)}_{part}{which}" + (f"_{cfg.data.normalize}" if cfg.data.normalize != "none" else "")
    path = draw_clips(sample.title, sample.layout, sample.clips, out / "plots" / (name + ("_augmented" if augmented else "")), fmt, frames, fps)
    click.echo(str(path))


@cli.command()
@click.argument("dataset", type=click.Choice(["ntu60", "ntu120", "pku2"]))
@click.option(
    "--raw",
    "raw_dirs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of raw files (repeatable: NTU-120 ships as two archives). NTU: .skeleton files + the official "
    "missing-skeleton list; PKU-MMD II: skeleton/, label/, cross_subject_v2.txt, cross_view_v2.txt.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output directory, e.g. data/ntu60 (see --data-root of `run`).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel worker processes (default: this process's share of the cores, at most 8: all of them unless other halp-bench processes run on the machine).",
)
@click.option(
    "--normalize",
    "agcn_at_prepare",
    is_flag=True,
    help="Store the agcn pipeline's output (two most active bodies, "
    "2s-AGCN pre-normalisation) instead of raw coordinates with every body; only data.pipeline=agcn can use it.",
)
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
            dataset,
            list(raw_dirs),
            out,
            workers=workers,
            normalize=agcn_at_prepare and not no_normalize,
            max_frames=max_frames,
            progress=not no_progress,
            force=force,
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
        f"{summary.samples:,} samples in {out} "
        f"({'agcn pipeline applied' if summary.normalized else 'raw coordinates, every body; data.pipeline applies at load'}); "
        f"read {summary.read:,} files, resumed {summary.resumed:,} samples, {summary.skipped_missing:,} skipped as on "
        f"the official missing list, {summary.truncated:,} cut to {max_frames} frames, {len(summary.failed):,} failed; "
        f"{summary.seconds:.1f}s ({summary.samples_per_second:.0f} samples/s)"
    )
    for file, reason in summary.failed:
        err_console.print(f"[red]failed: {escape(reason)}[/red]" if file in reason else f"[red]failed: {escape(file)}: {escape(reason)}[/red]", highlight=False)
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
