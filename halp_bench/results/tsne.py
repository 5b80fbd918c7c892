"""t-SNE maps of learned features: one panel per method, the same samples and the same t-SNE
settings in every panel, points coloured by class (`halp-bench plot --tsne`).

The features are computed elsewhere (orchestration/visualize.py: the evaluation features kNN uses); this module
embeds and draws them. scikit-learn's `TSNE` with PCA initialisation and a fixed seed, so the same
features give the same map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halp_bench.errors import ConfigError
from halp_bench.results.plots import check_formats, pyplot, save_figure


@dataclass
class Panel:
    """One method's features of the chosen samples."""

    title: str  # e.g. "moco (kNN 39.2 %)"
    features: np.ndarray  # (n, F)
    labels: np.ndarray  # (n,) class of each sample


def embed(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """(n, 2) t-SNE coordinates of (n, F) features."""
    from sklearn.manifold import TSNE

    if not 0 < perplexity < len(features):
        raise ConfigError(f"--perplexity {perplexity:g}: t-SNE needs a perplexity above 0 and below the number of samples ({len(features)})")
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed).fit_transform(features)


def plot_tsne(panels: list[Panel], stem: Path, formats: tuple[str, ...], perplexity: float, seed: int, title: str, num_classes: int) -> list[Path]:
    """One scatter per panel in one figure, `<stem>.<format>` per format; colours by class id (the
    same class has the same colour in every panel)."""
    check_formats(formats)
    plt = pyplot()
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows + 0.8), squeeze=False)
    colours = plt.get_cmap("tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo")
    colour_of = (lambda c: colours(c % colours.N)) if num_classes <= 20 else (lambda c: colours(c / max(num_classes - 1, 1)))
    for ax, panel in zip(axes.flat, panels):
        points = embed(panel.features, perplexity, seed)
        for label in np.unique(panel.labels):
            chosen = panel.labels == label
            ax.scatter(points[chosen, 0], points[chosen, 1], s=9, color=colour_of(int(label)), label=str(int(label)), linewidths=0)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if num_classes <= 20:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, title="class", loc="center right", fontsize="small", markerscale=2)
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout(rect=(0, 0, 0.93 if num_classes <= 20 else 1, 1))
    return save_figure(fig, stem, formats)
