"""Commands that read what is stored or declared: `config`, `list`, `table`, `plot`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from halp_bench.cli.common import cli, console, err_console, print_tables, results_rows, split_list
from halp_bench.errors import HalpBenchError
from halp_bench.validation import allowed_words, check_stored_methods

if TYPE_CHECKING:
    pass


@cli.command("config")
@click.option("--methods", help="Comma-separated method names (default: those of a bare run).")
@click.option(
    "--preset",
    type=click.Choice(["auto", "cpu", "paper", "official"]),
    default="auto",
    show_default=True,
    help="As for `run`; auto: cpu for the synthetic data, paper otherwise.",
)
@click.option("--dataset", default="synthetic", show_default=True, help="Registered dataset name (or path), as for `run`.")
@click.option("--split", default=None, help="Named split; give it for the identities a run would have (a run names the default split).")
@click.option("--seed", type=int, default=0, show_default=True, help="The seed (part of the pretraining identity).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, as for `run` (repeatable).")
@click.option(
    "--from-row",
    "from_row",
    default=None,
    metavar="RESULTS.jsonl:N",
    help="List the recipe of the N-th row (from 1) of a results file instead: its preset, data, seed and, as --set, "
    "every setting that differs from its preset's recipe.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per method: values, sources and identities.")
def config_command(methods, preset, dataset, split, seed, overrides, from_row, as_json) -> None:
    """Print each method's fully resolved recipe: every setting, where its value came from (default,
    preset, the method's run_defaults, --set) and the identities of its pretraining and cells."""
    import json

    from halp_bench.orchestration.recipe import read_row, recipe_from_row, resolve_recipe

    if from_row:
        recipes = [recipe_from_row(read_row(from_row))]
    else:
        from halp_bench.config import resolve_preset
        from halp_bench.methods.base import default_methods
        from halp_bench.registry import load_plugins

        load_plugins()
        preset = resolve_preset(preset, dataset)
        recipes = [resolve_recipe(name, preset, dataset, split, seed, list(overrides)) for name in split_list(methods) or default_methods()]
    for recipe in recipes:
        click.echo(json.dumps(recipe.to_dict(), sort_keys=True) if as_json else "\n".join(recipe.lines()) + "\n")


@cli.command("list")
@click.option(
    "--settings/--no-settings",
    "show_settings",
    default=True,
    show_default=True,
    help="Show each method's and encoder's settings (the --set method.* / encoder.* keys) with their paper values and what each allows.",
)
def list_plugins(show_settings: bool) -> None:
    """Registered methods (with their settings), encoders (with theirs), datasets, protocols, layouts and presets."""
    import dataclasses

    from halp_bench.config import AugmentSettings
    from halp_bench.presets import PRESET_DESCRIPTIONS
    from halp_bench.registry import DATASETS, ENCODERS, LAYOUTS, METHODS, PROTOCOLS, load_plugins

    load_plugins()

    def settings_line(settings_class: type, section: str) -> str:
        values = [
            f"{f.name}={getattr(settings_class(), f.name)}{allowed_words(f, settings_class)}" for f in dataclasses.fields(settings_class) if f.name != "name"
        ]
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
    parts = [
        f"family {declaration.family} ({FAMILIES.get(declaration.family, 'declared by the plugin')})",
        f"base {declaration.compared_to or '–'}",
        f"encoder {encoder}" + (f" ({others})" if others else ""),
        "runs: " + ", ".join(runs),
    ]
    lines = "\n[dim]" + escape(" · ".join(parts)) + (f"; {escape(declaration.citation)}" if declaration.citation else "") + "[/dim]"
    defaults = "; ".join(f"{key}: " + ", ".join(f"{k}={v}" for k, v in values.items()) for key, values in seen["run_defaults"].items())
    return lines + (f"\n[dim]run_defaults: {escape(defaults)}[/dim]" if defaults else "")


def stored_results(out_help: str) -> Callable[[Any], Any]:
    """`--out` (what it means to the command) and `--results`: where the stored rows are read from."""

    def add(command: Any) -> Any:
        command = click.option(
            "--results",
            "results_files",
            multiple=True,
            type=click.Path(path_type=Path),
            help="A results.jsonl file; repeat to combine several (default: <out>/results.jsonl).",
        )(command)
        return click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help=out_help)(command)

    return add


@cli.command()
@stored_results("Output directory of `run`: reads <out>/results.jsonl (unless --results) and writes <out>/tables/<table>.<format>.")
@click.option(
    "--tables",
    "table_names",
    default=None,
    help="Comma-separated: linear (Table 1), knn (Table 2), transfer (Table 3), cost (Table 4), semi, ablations, "
    "differences (default: every table with something to show).",
)
@click.option(
    "--format",
    "formats",
    default="md,tex",
    show_default=True,
    help="Comma-separated: md (Markdown) and/or tex (LaTeX, booktabs: needs \\usepackage{booktabs}).",
)
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
    rows = [row for row, _ in results_rows(out, results_files)]
    names = split_list(table_names, "--tables")
    print_tables(rows, out, tuple(split_list(formats, "--format") or ()), tuple(names) if names else None, with_paper)


@cli.command()
@stored_results("Output directory of `run`: runs are found through <out>/results.jsonl; plots go to <out>/plots/.")
@click.option("--methods", default=None, help="Only these methods (comma-separated; default: all; with --tsne also the panels' order).")
@click.option("--format", "formats", default="png", show_default=True, help="Comma-separated: png and/or svg.")
@click.option(
    "--tsne",
    is_flag=True,
    help="Instead of curves: a t-SNE of the evaluation features (those kNN uses: the encoder of "
    "each stored kNN/linear run, centre crop, L2-normalised) of the test split, one panel per method, coloured by "
    "class; one figure per dataset split, <out>/plots/tsne_<dataset>_<split>.<format>.",
)
@click.option("--seed", type=int, default=None, help="--tsne: the runs of this seed (default: the smallest stored).")
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="--tsne: test samples to embed; a larger test set is subsampled at random (the same samples for every method).",
)
@click.option("--sample-seed", type=int, default=0, show_default=True, help="--tsne: seed of that subsample and of the t-SNE itself.")
@click.option(
    "--perplexity",
    type=click.FloatRange(min=0, min_open=True, max=1e6),
    default=30.0,
    show_default=True,
    help="--tsne: t-SNE perplexity (the same for every panel).",
)
@click.option("--device", default="auto", show_default=True, help="--tsne: where features are computed: auto | cpu | cuda | cuda:N | mps.")
def plot(
    out: Path,
    results_files: tuple[Path, ...],
    methods: str | None,
    formats: str,
    tsne: bool,
    seed: int | None,
    samples: int,
    sample_seed: int,
    perplexity: float,
    device: str,
) -> None:
    """Training curves of the runs behind the stored results: pretraining loss per epoch
    (runs/<run>/log.csv) and kNN top-1 during pretraining (monitor.csv, with --set
    eval.monitor_every=N on `run`); or, with --tsne, a t-SNE map of their features.
    Needs matplotlib: pip install 'halp-bench[plot]'."""
    from halp_bench.results.plots import check_formats, find_runs, plot_curves

    rows = results_rows(out, results_files)
    chosen_formats = tuple(split_list(formats, "--format") or ())
    chosen_methods = split_list(methods, "--methods")
    check_formats(chosen_formats)
    if tsne:
        from halp_bench.engine.device import resolve_device
        from halp_bench.orchestration.visualize import tsne_figures
        from halp_bench.registry import load_plugins
        from halp_bench.results.tsne import plot_tsne

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
