"""Training curves of the pretrainings behind stored results: loss per epoch (`log.csv`) and kNN
top-1 measured during pretraining (`monitor.csv`, written when `eval.monitor_every > 0`).

matplotlib is an optional extra (`pip install 'halp-bench[plot]'`); without it `plot_curves` is a
ConfigError saying so. A resumed run may have logged an epoch twice; the last row of an epoch wins.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

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


def find_runs(rows: list[tuple[ResultRow, Path]], methods: list[str] | None = None) -> list[RunCurves]:
    """One entry per pretraining run directory named by the rows (each with its results file, whose
    folder locates `runs/` when the stored path was relative to another working directory)."""
    seen: dict[Path, RunCurves] = {}
    for row, results_file in rows:
        if not row.run_dir or (methods and row.method not in methods):
            continue
        stored = Path(row.run_dir)
        run_dir = next((p for p in (stored, results_file.parent / "runs" / stored.name) if (p / LOG_NAME).exists()), None)
        if run_dir is None or run_dir in seen:
            continue
        loss = _read(run_dir / LOG_NAME)
        if loss is None:
            continue
        seen[run_dir] = RunCurves(f"{row.method} seed {row.seed}, {row.transfer_from or row.data}", loss, _read(run_dir / MONITOR_NAME))
    return list(seen.values())


def plot_curves(runs: list[RunCurves], stem: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Loss per epoch (and kNN top-1 when monitored) of every run; `<stem>.<format>` per format."""
    unknown = [f for f in formats if f not in PLOT_FORMATS]
    if unknown:
        raise ConfigError(f"unknown plot format(s) {', '.join(unknown)}; choose from {', '.join(PLOT_FORMATS)}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("halp-bench plot needs matplotlib: pip install 'halp-bench[plot]'") from None
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
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120)
        path = stem.with_suffix(f".{fmt}")
        atomic_write_bytes(path, lambda handle, data=buffer.getvalue(): handle.write(data))
        paths.append(path)
    plt.close(fig)
    return paths
