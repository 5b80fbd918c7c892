"""Training curves of the pretrainings behind stored results: loss per epoch (`log.csv`) and kNN
top-1 measured during pretraining (`monitor.csv`, written when `eval.monitor_every > 0`); and what
every figure of this package shares: matplotlib without a display, and atomic PNG/SVG files.

matplotlib is an optional extra (`pip install 'halp-bench[plot]'`); without it every figure is a
ConfigError saying so. A resumed run may have logged an epoch twice; the last row of an epoch wins.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.errors import ConfigError
from halp_bench.results.row import ResultRow

PLOT_FORMATS = ("png", "svg")
LOG_NAME, MONITOR_NAME = "log.csv", "monitor.csv"


@dataclass
class RunCurves:
    label: str  # "moco seed 0, synthetic/xsub"
    loss: pd.DataFrame  # epoch, loss (and each component loss)
    knn: pd.DataFrame | None  # epoch, knn_top1


def _read(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    frame = pd.read_csv(path)
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch") if "epoch" in frame else None


def run_dir_holding(row: ResultRow, results_file: Path, name: str) -> Path | None:
    """The row's run directory if it holds the file `name`: where the row says, or in `runs/` beside
    the results file (a results folder moved, or read from another working directory)."""
    if not row.run_dir:
        return None
    stored = Path(row.run_dir)
    return next((p for p in (stored, results_file.parent / "runs" / stored.name) if (p / name).exists()), None)


def find_runs(rows: list[tuple[ResultRow, Path]], methods: list[str] | None = None) -> list[RunCurves]:
    """One entry per pretraining run directory named by the rows (each with its results file, whose
    folder locates `runs/` when the stored path was relative to another working directory)."""
    seen: dict[Path, RunCurves] = {}
    for row, results_file in rows:
        if methods and row.method not in methods:
            continue
        run_dir = run_dir_holding(row, results_file, LOG_NAME)
        if run_dir is None or run_dir in seen:
            continue
        loss = _read(run_dir / LOG_NAME)
        if loss is None:
            continue
        seen[run_dir] = RunCurves(f"{row.method} seed {row.seed}, {row.transfer_from or row.data}", loss, _read(run_dir / MONITOR_NAME))
    return list(seen.values())


def check_formats(formats: tuple[str, ...], allowed: tuple[str, ...] = PLOT_FORMATS) -> None:
    unknown = [f for f in formats if f not in allowed]
    if unknown or not formats:
        raise ConfigError(f"unknown plot format(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}")


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files (no display needed), or a ConfigError naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("halp-bench figures need matplotlib: pip install 'halp-bench[plot]'") from None
    return plt


def save_figure(fig: Any, stem: Path, formats: tuple[str, ...], dpi: int = 120) -> list[Path]:
    """`<stem>.<format>` per format, each written atomically; the figure is closed."""
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi)
        path = stem.with_suffix(f".{fmt}")
        atomic_write_bytes(path, lambda handle, data=buffer.getvalue(): handle.write(data))  # noqa: B008
        paths.append(path)
    pyplot().close(fig)
    return paths


def plot_curves(runs: list[RunCurves], stem: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Loss per epoch (and kNN top-1 when monitored) of every run; `<stem>.<format>` per format."""
    check_formats(formats)
    plt = pyplot()
    monitored = [r for r in runs if r.knn is not None]
    fig, axes = plt.subplots(1, 2 if monitored else 1, figsize=(12 if monitored else 7, 4.5), squeeze=False)
    loss_ax = axes[0][0]
    for run in runs:
        loss_ax.plot(run.loss["epoch"], run.loss["loss"], label=run.label)
    loss_ax.set(xlabel="epoch", ylabel="pretraining loss (mean over the epoch)", title="loss")
    loss_ax.legend(fontsize="small")
    if monitored:
        knn_ax = axes[0][1]
        for run in monitored:
            knn_ax.plot(run.knn["epoch"], run.knn["knn_top1"], marker="o", label=run.label)
        knn_ax.set(xlabel="epoch", ylabel="kNN top-1 (%)", title="kNN during pretraining")
        knn_ax.legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, stem, formats)
