"""Commands that evaluate stored weights: `eval` (released files and our checkpoints) and `ensemble`
(the class scores of separately pretrained streams fused)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from halp_bench.cli.common import LOGGER_OPTION, cli, console, given, parse_seeds, print_cells, print_tables, split_list, warn
from halp_bench.validation import device_setting, refuse_inapplicable, threads_warning

if TYPE_CHECKING:
    pass


@cli.command("eval")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Weights to evaluate: a checkpoint.pt of `run` (from any machine), or a file the authors released: CMD/HaLP "
    "checkpoint_XXXX.pth.tar (BiGRU), CrosSCLR/AimCLR .pt (ST-GCN). Loaded without running code.",
)
@click.option("--method", default=None, help="The method that made the authors' file (its rows' name, e.g. halp, cmd, moco); read from our own checkpoints.")
@click.option(
    "--encoder",
    default=None,
    help="Encoder for the authors' BiGRU files: bigru_official (default; their exact math, checked against their "
    "frame-by-frame computation) or bigru (a true bidirectional GRU with the same weights). ST-GCN files: stgcn.",
)
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset to evaluate on (name or path, as for `run`).")
@click.option("--split", default=None, help="Named split (default: the dataset's default).")
@click.option("--protocols", default=None, help="Comma-separated (default: knn,linear; transfer and semi fine-tune the weights when named).")
@click.option(
    "--preset",
    type=click.Choice(["cpu", "paper", "official"]),
    default=None,
    help="Recipe of the protocols (default: cpu for the synthetic data, paper otherwise); our checkpoints keep their own pretraining settings.",
)
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
def evaluate(
    checkpoint, method, encoder, dataset, split, protocols, preset, overrides, seeds, device, out, data_root, force, deterministic, threads, logger, no_progress
) -> None:
    """Run the protocols on pretrained weights without pretraining, store rows, print the tables.

    Each row records the file's SHA-256, layout and origin; tables show such rows apart, e.g.
    "halp (released weights)". Our own checkpoints evaluated with the preset and --set of their
    run give that run's numbers. A file that does not fit (missing or unexpected keys, wrong shapes)
    or that would need code to unpickle is refused in one line.
    """
    from halp_bench.common.loggers import parse_loggers
    from halp_bench.config import resolve_preset
    from halp_bench.orchestration.evaluate import EvalSpec, run_eval
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    loggers = parse_loggers(logger)
    refuse_inapplicable("eval", overrides)
    device = device_setting(overrides, device, given("device"))
    warn(threads_warning(threads))
    if data_root is not None:
        overrides = (*overrides, f"data.data_root={data_root}")
    spec = EvalSpec(
        checkpoint=checkpoint,
        dataset=dataset,
        split=split,
        method=method,
        encoder=encoder,
        protocols=split_list(protocols, "--protocols"),
        seeds=parse_seeds(seeds),
        preset=resolve_preset(preset, dataset),
        overrides=list(overrides),
        device=device,
        out=out,
        force=force,
        show_progress=not no_progress,
        deterministic=deterministic,
        threads=threads,
        loggers=loggers,
    )
    cells = run_eval(spec, say=console.print)
    print_cells(cells, f"cells: {checkpoint.name} on {dataset}{'/' + split if split else ''}")
    print_tables(read_rows(out / RESULTS_FILE), out, ("md", "tex"), shown=("md",))


@cli.command("ensemble")
@click.option(
    "--method",
    required=True,
    help="A single-stream method whose joint, motion and bone pretrainings are stored "
    "(halp-bench run --set method.stream=motion|bone, with the same preset, settings and seeds).",
)
@click.option(
    "--weights",
    "weights",
    default="aimclr",
    show_default=True,
    help="Stream weights: aimclr (0.6 joint, 0.4 motion, 0.6 bone, AimCLR's ensemble script), equal, or joint,motion,bone numbers.",
)
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
    from halp_bench.orchestration.ensemble import EnsembleSpec, run_ensemble
    from halp_bench.results.row import read_rows
    from halp_bench.results.store import RESULTS_FILE

    spec = EnsembleSpec(
        method=method,
        dataset=dataset,
        split=split,
        weights=weights,
        seeds=parse_seeds(seeds),
        preset=resolve_preset(preset, dataset),
        overrides=list(overrides),
        device=device,
        out=out,
        show_progress=not no_progress,
        deterministic=deterministic,
        threads=threads,
    )
    cells = run_ensemble(spec, say=console.print)
    print_cells(cells, f"cells: {method} 3s on {dataset}{'/' + split if split else ''}")
    print_tables(read_rows(out / RESULTS_FILE), out, ("md", "tex"), shown=("md",))
