"""What `plot --tsne` and `show` compute before they draw (results/tsne.py, results/skeleton_drawing.py):
the evaluation features of stored cells, each encoder rebuilt from its result row and the weights
it was evaluated with (its run's checkpoint, or the file of an `eval --checkpoint` row), and one
dataset sample with the pretraining views a method makes of it.

It sits beside the runner and `evaluate`: it rebuilds methods and reads checkpoints (engine,
weights.py), which the results package, which only draws, must not import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from halp_bench.config import RunConfig, config_from_dict
from halp_bench.datasets.base import SkeletonData, SkeletonSubset
from halp_bench.datasets.catalog import load_dataset
from halp_bench.engine.device import seed_everything
from halp_bench.engine.pretrain import CHECKPOINT_FILE
from halp_bench.errors import ConfigError, HalpBenchError
from halp_bench.methods.base import create_method
from halp_bench.orchestration.run_dirs import safe_name
from halp_bench.protocols.base import ProtocolContext, extract_features
from halp_bench.registry import METHODS
from halp_bench.results.plots import run_dir_holding
from halp_bench.results.row import ResultRow
from halp_bench.results.skeleton_drawing import Clip
from halp_bench.results.tables import variant_label
from halp_bench.results.tsne import Panel
from halp_bench.skeleton import SkeletonLayout
from halp_bench.weights import eval_encoder_from_authors, method_from_checkpoint, read_weights

TSNE_PROTOCOLS = ("knn", "linear")  # cells that evaluate the pretrained encoder itself, on its pretraining data


@dataclass
class TsneFigure:
    """The panels of one t-SNE figure: every method's features of the same samples of one dataset split."""

    name: str  # file-name part, e.g. "synthetic_xsub"
    title: str
    panels: list[Panel]
    num_classes: int
    notes: list[str] = field(default_factory=list)  # runs left out, and why


def tsne_figures(
    rows: list[tuple[ResultRow, Path]],
    methods: list[str] | None,
    seed: int | None,
    samples: int,
    sample_seed: int,
    perplexity: float,
    device: torch.device,
    say: Callable[[str], None] = print,
) -> list[TsneFigure]:
    """One figure per (dataset, split, normalisation) among the kNN and linear rows of `methods`
    (default all) and `seed` (default: the smallest stored), one panel per encoder (a run's
    pretraining, or the file of an `eval --checkpoint` row). Test samples beyond `samples` are
    left out at random (`sample_seed`), the same ones for every panel."""
    chosen = [(row, path) for row, path in rows if row.protocol in TSNE_PROTOCOLS and (not methods or row.method in methods)]
    if not chosen:
        raise HalpBenchError(
            "no kNN or linear results" + (f" of {', '.join(methods)}" if methods else "") + " to take features from; run `halp-bench run --protocols knn` first"
        )
    groups: dict[tuple[str, str, str], list[tuple[ResultRow, Path]]] = {}
    for row, path in chosen:
        groups.setdefault((row.dataset, row.split, row.config.get("data", {}).get("normalize", "none")), []).append((row, path))
    figures = []
    for (dataset, split, normalize), group in groups.items():
        wanted = seed if seed is not None else min(row.seed for row, _ in group)
        encoders: dict[str, tuple[ResultRow, Path]] = {}  # run directory or weights file -> its latest row (kNN preferred)
        for row, path in sorted((item for item in group if item[0].seed == wanted), key=lambda item: (item[0].protocol == "knn", item[0].finished)):
            encoders[row.weights["sha256"] if row.weights else Path(row.run_dir).name] = (row, path)
        if not encoders:
            continue
        ordered = sorted(encoders.values(), key=lambda item: methods.index(item[0].method)) if methods else list(encoders.values())
        figures.append(_tsne_figure(dataset, split, normalize, wanted, ordered, samples, sample_seed, perplexity, device, say))
    if not figures:
        raise HalpBenchError(f"no kNN or linear results of seed {seed} to take features from")
    return figures


def _tsne_figure(
    dataset: str,
    split: str,
    normalize: str,
    seed: int,
    encoders: list[tuple[ResultRow, Path]],
    samples: int,
    sample_seed: int,
    perplexity: float,
    device: torch.device,
    say: Callable[[str], None],
) -> TsneFigure:
    first = config_from_dict(encoders[0][0].method, encoders[0][0].config)
    data = load_dataset(first.data)
    _, test = data.split(split)
    if samples < 2:
        raise ConfigError(f"--samples {samples}: a t-SNE needs at least 2 samples")
    drawn = len(test) > samples
    positions = np.sort(np.random.default_rng(sample_seed).choice(len(test), samples, replace=False)) if drawn else np.arange(len(test))
    subset = test.subset(positions)
    how_many = f"{len(subset)} of {len(test)} test samples (drawn with seed {sample_seed})" if drawn else f"all {len(test)} test samples"
    say(f"t-SNE of {dataset}/{split}: {how_many}, perplexity {perplexity:g}")
    labels = [variant_label(row) for row, _ in encoders]
    figure = TsneFigure(
        f"{safe_name(dataset)}_{safe_name(split)}" + (f"_{normalize}" if normalize != "none" else ""),
        f"t-SNE of the kNN features of {dataset}/{split}"
        + (f" (normalize={normalize})" if normalize != "none" else "")
        + f", seed {seed}: {how_many}, perplexity {perplexity:g}",
        [],
        data.num_classes,
    )
    for (row, results_file), label in zip(encoders, labels):
        try:
            features, classes = _stored_features(row, results_file, data, subset, device)
        except HalpBenchError as exc:  # e.g. a run directory removed since: the other panels still tell
            figure.notes.append(f"{label} left out: {exc}")
            continue
        title = label + (f" [{Path(row.run_dir).name.rsplit('_', 1)[-1]}]" if labels.count(label) > 1 and row.run_dir else "")
        if row.protocol == "knn":
            title += f" (kNN {row.metrics.get('top1', float('nan')):.1f} %)"
        figure.panels.append(Panel(title, features, classes))
    if not figure.panels:
        raise HalpBenchError(f"t-SNE of {dataset}/{split}: no encoder could be rebuilt ({'; '.join(figure.notes)})")
    return figure


def _stored_features(row: ResultRow, results_file: Path, data: SkeletonData, subset: SkeletonSubset, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The L2-normalised features kNN used for `row`'s cell (its encoder, crop and frames) of
    `subset`: the method rebuilt from its run's checkpoint (or, for an `eval --checkpoint` row, from
    the file it names, which must be unchanged)."""
    cfg = config_from_dict(row.method, row.config)
    spec = data.spec(cfg.data.frames)
    seed_everything(cfg.seed)  # a method that does not train (random) is rebuilt as the run built it
    if row.weights:
        weights = read_weights(Path(row.weights["path"]))
        if weights.sha256 != row.weights["sha256"]:
            raise HalpBenchError(f"{weights.path} has changed since its row was stored (sha256 {weights.sha256[:12]}, not {row.weights['sha256'][:12]})")
        if weights.layout == "halp-bench":
            encoder = method_from_checkpoint(weights, cfg, spec)[1].encoder_for_eval()
        else:
            encoder = eval_encoder_from_authors(weights, cfg.encoder.name, cfg.eval.stream, spec)[0]
    elif METHODS.get(row.method).pretrains:
        run_dir = run_dir_holding(row, results_file, CHECKPOINT_FILE)
        if run_dir is None:
            raise HalpBenchError(f"no {CHECKPOINT_FILE} in {row.run_dir} (removed?)")
        encoder = method_from_checkpoint(read_weights(run_dir / CHECKPOINT_FILE), cfg, spec)[1].encoder_for_eval()
    else:
        encoder = create_method(row.method, cfg, spec).encoder_for_eval()
    features, classes = extract_features(encoder.to(device), subset, ProtocolContext(cfg=cfg, device=device))
    return features.cpu().numpy(), classes.cpu().numpy()


@dataclass
class Sample:
    """What `show` draws: a sample and, optionally, the views a method makes of it."""

    title: str
    split: str
    layout: SkeletonLayout
    clips: list[Clip]


def show_sample(cfg: RunConfig, part: str, index: int | None, label: int | None, augmented: bool, method_name: str, view_seed: int) -> Sample:
    """Sample `index` of the `part` ("train" or "test") of `cfg.data`'s split, or the first of class
    `label`; with `augmented`, the views `method_name` makes of it for pretraining (drawn with `view_seed`)."""
    data = load_dataset(cfg.data, check=False)  # a look at the data is how one diagnoses it: never refused
    train, test = data.split(cfg.data.split or None)
    split = cfg.data.split or data.default_split
    subset = {"train": train, "test": test}[part]
    if len(subset) == 0:
        raise ConfigError(f"{data.name}: the {part} part of split '{split}' is empty")
    if label is not None:
        matches = np.flatnonzero(subset.labels == label)
        if not len(matches):
            present = np.unique(subset.labels)
            raise ConfigError(
                f"--label {label}: no sample of that class in the {part} part of {data.name}/{split} "
                f"(classes there: {present.min()}..{present.max()}, {len(present)} of {data.num_classes})"
            )
        position = int(matches[0])
    else:
        position = index or 0
        if not 0 <= position < len(subset):
            raise ConfigError(f"--index {position}: the {part} part of {data.name}/{split} has {len(subset)} samples (0..{len(subset) - 1})")
    x, lengths, labels = subset.gather(np.array([position]))
    length = int(lengths[0])
    clips = [Clip("sample", x[0, :, :length], np.arange(1, length + 1))]
    if augmented:
        method = create_method(method_name, cfg, data.spec(cfg.data.frames))
        generator = torch.Generator().manual_seed(view_seed)
        views = method.make_views(torch.from_numpy(x), torch.from_numpy(lengths), generator)
        for number, view in enumerate(views, start=1):
            frames = view.shape[2]
            clips.append(Clip(f"{method_name} view {number}", view[0].numpy(), np.arange(1, frames + 1)))
    normalize = f", normalize={cfg.data.normalize}" if cfg.data.normalize != "none" else ""
    row = int(subset.indices[position])
    name = f" {data.names[row]}" if data.names else ""
    title = f"{data.name} {split} {part} #{position}{name} (row {row}): class {int(labels[0])}, {length} frames{normalize}" + (
        f"; views: {method_name}, {cfg.preset} preset, seed {view_seed}" if augmented else ""
    )
    return Sample(title, split, data.skeleton_layout(), clips)
